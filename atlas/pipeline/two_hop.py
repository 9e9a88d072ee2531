"""Compiled search for `project.sample_neighbors`: a record's nearest sample members among its
neighbours and their neighbours (numba, one record per thread)."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def nearest_members(queries, start, graph, slot, members, indices, distances):
    """Fill row i of `indices` (slots, -1 where none) and `distances` (cosine, ascending, preset to
    the padding) for record start + i (its vector: queries[i]) from the candidates graph[start + i]
    and their graph rows whose `slot` is not -1 (their vectors: members[slot])."""
    k = graph.shape[1]
    for i in numba.prange(len(queries)):
        found = 0
        for a in range(k):
            u = graph[start + i, a]
            for b in range(-1, k):
                v = u if b < 0 else graph[u, b]
                s = slot[v]
                if s < 0:
                    continue
                seen = False
                for t in range(found):
                    if indices[i, t] == s:
                        seen = True
                        break
                if seen:
                    continue
                d = np.float32(1.0)
                for c in range(queries.shape[1]):
                    d -= queries[i, c] * members[s, c]
                if d < 0:
                    d = np.float32(0.0)
                if found == k and d >= distances[i, k - 1]:
                    continue
                t = found if found < k else k - 1
                while t > 0 and distances[i, t - 1] > d:
                    indices[i, t] = indices[i, t - 1]
                    distances[i, t] = distances[i, t - 1]
                    t -= 1
                indices[i, t] = s
                distances[i, t] = d
                if found < k:
                    found += 1
