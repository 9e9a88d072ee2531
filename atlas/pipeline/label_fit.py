"""How well a name fits its topic, judged by meaning with the map's own embedder.

A topic's centroid is the mean of its records' vectors. A name fits when its vector is close
enough to its own topic's centroid and nearer it than to any other topic's of its level: a
name that would suit another topic as well does not tell the reader where they are. Every
topic of the level is a rival (not only the nearest few: with hundreds of topics a name can
beat its neighbours and still sit nearest a far topic), so a name that fits is one that
finds its topic among all of its level's, which is what bench/labels.py measures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Below this cosine to its own centroid a name is about something else, however its rivals
# score (MiniLM: names that fit read 0.4-0.7, unrelated ones 0.0-0.2).
MIN_OWN = 0.25


@dataclass(frozen=True)
class Fit:
    own: float  # cosine of the name to its topic's centroid
    margin: float  # own minus the closest rival's cosine; above 0 the name fits its topic best

    @property
    def fits(self) -> bool:
        return self.own >= MIN_OWN and self.margin > 0

    @property
    def problem(self) -> str | None:
        if self.own < MIN_OWN:
            return "not about these texts"
        return None if self.margin > 0 else "fits another topic better"

    @property
    def score(self) -> float:
        """What candidates are ranked by: close to the topic, and closer than to any rival."""
        return self.own + self.margin


class FitScorer:
    """Scores names for topics; `encode` is the map's embedder (unit vectors out).

    Safe to call from several threads: calls to the embedder are serialised, also across the
    scorers `with_names` makes (a tokenizer used by two threads at once fails: "Already borrowed").
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], centroids: np.ndarray, level: np.ndarray):
        self.encode, self.centroids, self.level = encode, centroids, level
        self._peers = {int(lvl): np.flatnonzero(level == lvl) for lvl in np.unique(level)}
        self._lock = threading.Lock()

    def with_names(self, parents: list[int], children: list[list[int]], labels: list[str],
                   size: np.ndarray) -> FitScorer:
        """A scorer in which each parent's centroid has moved halfway towards its children's
        names (their size-weighted mean vector), so a parent's name is judged as a category of
        its children too: the name above them should be the one nearest their names."""
        named = [(p, kids) for p, kids in zip(parents, children) if kids]
        centroids = self.centroids.copy()
        if named:
            vectors = self.embed([labels[c] for _, kids in named for c in kids])
            start = 0
            for p, kids in named:
                mean = size[kids] @ vectors[start:start + len(kids)]
                start += len(kids)
                blend = centroids[p] + mean / max(np.linalg.norm(mean), 1e-12)
                centroids[p] = blend / max(np.linalg.norm(blend), 1e-12)
        moved = FitScorer(self.encode, centroids, self.level)
        moved._lock = self._lock  # one embedder: its calls stay serialised across the scorers made from it
        return moved

    def embed(self, names: list[str]) -> np.ndarray:
        """(len(names), dim) unit vectors of the names."""
        with self._lock:
            return np.asarray(self.encode(names), np.float32)

    def fits(self, topic: int, names: list[str]) -> list[Fit]:
        if not names:
            return []
        vectors = self.embed(names)
        own = vectors @ self.centroids[topic]
        peers = self._peers[int(self.level[topic])]
        rivals = peers[peers != topic]
        best = (vectors @ self.centroids[rivals].T).max(axis=1) if len(rivals) else np.full(len(names), -1.0)
        return [Fit(float(o), float(o - b)) for o, b in zip(own, best)]
