"""Identical texts are one place on the map.

Their embeddings are equal, so a kNN graph over every record gives each of them only its
copies as neighbours (a text repeated more than k times is cut off from the rest); UMAP
strings such a group out, and the copies placed against its sample land beside any of its
copies: on 886k PyPI summaries the 44,615 empty ones fell into 381 of 409 finest topics. So
the graph and the layout see each distinct text once; every record then takes its text's
neighbours; HDBSCAN sees its copies at its place (so they are one topic: spread out, they
fell into several), and the map draws them evenly over a small disc around it, denser than
the map's densest regions, whose area says how many they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.pipeline.ingest import MIN_RECORDS
from atlas.pipeline.neighbors import Neighbors

# a disc of copies is this many times as dense as the map's points would be, spread evenly over the
# square that holds them: at 886k PyPI summaries about the density of the map's densest 0.1% of
# cells (a 512 x 512 histogram, measured once)
DENSER = 200.0


@dataclass(frozen=True)
class Distinct:
    """Which records share a text: `rows` takes the distinct texts' rows of a per-record array,
    `every` gives each record its text's row of a per-text one."""

    first: np.ndarray  # int64 (U,): the first row of each distinct text, ascending
    inverse: np.ndarray  # int64 (N,): each row's distinct text

    @classmethod
    def each(cls, n: int) -> Distinct:
        """Every record its own point: for vectors read from a column, which equal texts need not share."""
        rows = np.arange(n, dtype=np.int64)
        return cls(rows, rows)

    @property
    def all_distinct(self) -> bool:
        return len(self.first) == len(self.inverse)

    def rows(self, values: np.ndarray) -> np.ndarray:
        """`values` (N, ...) at the distinct texts' rows: `values` itself when none repeats."""
        return values if self.all_distinct else values[self.first]

    def every(self, values: np.ndarray) -> np.ndarray:
        """Per record, its text's row of `values` (U, ...): `values` itself when none repeats."""
        return values if self.all_distinct else values[self.inverse]

    def neighbors(self, graph: Neighbors) -> Neighbors:
        """Every record's neighbours from the distinct texts' `graph` (row u: text u's, itself
        first; -1: none): the record itself, then its text's other neighbours, each by its first
        record."""
        if self.all_distinct:
            return graph
        own = _own_first(graph)
        texts = own.indices[self.inverse]
        indices = np.where(texts >= 0, self.first[texts], -1).astype(np.int32)
        indices[:, 0] = np.arange(len(self.inverse))
        distances = own.distances[self.inverse]
        distances[:, 0] = 0.0
        return Neighbors(indices, distances)

    def spread(self, xy: np.ndarray, seed: int | None) -> np.ndarray:
        """float32 (N, 2): each record at its text's place in `xy` (U, 2); a text's copies spread
        evenly over a disc around it whose area grows with their number (seeded: repeatable)."""
        if self.all_distinct:
            return xy
        counts = np.bincount(self.inverse, minlength=len(self.first))
        extent = float(np.ptp(xy, axis=0).max()) or 1.0
        radius = np.where(counts > 1, extent * np.sqrt(counts / (np.pi * DENSER * len(self.inverse))), 0.0)
        rng = np.random.default_rng(seed or 0)
        reach = radius[self.inverse] * np.sqrt(rng.random(len(self.inverse)))
        turn = 2 * np.pi * rng.random(len(self.inverse))
        return self.every(xy) + np.stack([reach * np.cos(turn), reach * np.sin(turn)], axis=1).astype(np.float32)


def _own_first(graph: Neighbors) -> Neighbors:
    """`graph` with each row's own text in its first column: NN-descent may list another text
    first when both embed alike ("UNKNOWN" and "unknown" under an uncased model)."""
    rows = np.arange(len(graph.indices))
    own = graph.indices == rows[:, None]
    column = np.where(own.any(axis=1), own.argmax(axis=1), 0)
    moved = np.flatnonzero(column)
    if not len(moved):
        return graph
    indices, distances = graph.indices.copy(), graph.distances.copy()
    for values in (indices, distances):
        values[moved, column[moved]], values[moved, 0] = values[moved, 0], values[moved, column[moved]]
    return Neighbors(indices, distances)


def distinct_texts(texts: pa.ChunkedArray | pa.Array, least: int = MIN_RECORDS) -> Distinct:
    """Which rows hold the same text (byte for byte, as the embedder reads it); at least `least`
    texts must differ (a map's fewest records)."""
    codes = pc.dictionary_encode(texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts)
    inverse = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.unique(inverse, return_index=True)[1]  # in order of first appearance, as the dictionary
    if len(first) == 1:
        raise AtlasError(f"all {len(inverse):,} texts are the same; a map needs texts that differ")
    if len(first) < least:
        raise AtlasError(f"only {len(first)} of the {len(inverse):,} texts differ; a map needs at least "
                         f"{least} different texts")
    return Distinct(first, inverse)
