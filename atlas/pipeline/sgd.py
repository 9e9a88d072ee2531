"""Compiled SGD for `project.place_block`: UMAP's epochs (umap-learn's edge step and negative
sampling, its `optimize_layout_euclidean` with the layout held fixed) for records that move
alone, one record per thread. A record's moves read only its own edges, its own random state
and the fixed layout, so the result is the same on any number of threads (umap-learn's
parallel SGD splits a record's edges between threads, so it runs seeded work on one)."""

import numba
import numpy as np
from umap.layouts import clip, rdist
from umap.utils import tau_rand_int

NEGATIVE_RATE = 5.0  # negative samples per positive one, UMAP's default
LEARNING_RATE = 0.25  # at the first epoch, falling to 0 at the last: UMAP's `transform` rate


@numba.njit(parallel=True, fastmath=True, cache=True)
def move_alone(xy, layout, tails, epochs_per_sample, a, b, states, epochs):
    """Move each row of `xy` in place for `epochs` epochs: towards layout row tails[i, j] (-1:
    no edge) every epochs_per_sample[i, j] epochs, and away from NEGATIVE_RATE random layout
    rows each time; `states[i]` is row i's random state (3 int64)."""
    n, k = tails.shape
    for i in numba.prange(n):
        current = xy[i]
        due = epochs_per_sample[i].copy()
        per_negative = epochs_per_sample[i] / NEGATIVE_RATE
        negative_due = per_negative.copy()
        alpha = LEARNING_RATE
        for epoch in range(epochs):
            for j in range(k):
                if tails[i, j] < 0 or due[j] > epoch:
                    continue
                other = layout[tails[i, j]]
                dist = rdist(current, other)
                grad = -2.0 * a * b * pow(dist, b - 1.0) / (a * pow(dist, b) + 1.0) if dist > 0.0 else 0.0
                for d in range(2):
                    current[d] += clip(grad * (current[d] - other[d])) * alpha
                due[j] += epochs_per_sample[i, j]
                negatives = int((epoch - negative_due[j]) / per_negative[j])
                for _ in range(negatives):
                    other = layout[tau_rand_int(states[i]) % len(layout)]
                    dist = rdist(current, other)
                    if dist > 0.0:
                        grad = 2.0 * b / ((0.001 + dist) * (a * pow(dist, b) + 1.0))
                        for d in range(2):
                            current[d] += clip(grad * (current[d] - other[d])) * alpha
                negative_due[j] += negatives * per_negative[j]
            alpha = LEARNING_RATE * (1.0 - epoch / epochs)


def random_states(seed_state: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """int64 (B, 3): each row's random state, as umap-learn derives it (the seed's state plus
    the bits of the row's starting x)."""
    return seed_state.astype(np.int64) + xy[:, :1].astype(np.float64).view(np.int64)
