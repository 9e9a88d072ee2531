"""Names chosen together, so that the levels read as one taxonomy.

Each topic has a few acceptable names, each with its fit score (label_fit). A child's name
should sit nearer its own parent's name than any other name of the parent's level: that is
what a reader checks going down the map (and what bench/labels.py counts as child->parent
consistency). Starting from every topic's best-fitting name, a few sweeps of coordinate
ascent take, topic by topic, the name that maximises

    sum of the chosen names' fit scores + WEIGHT * sum over child topics of
    clip((child . own parent - child . nearest other parent) / MARGIN, -1, 1)

(unit name vectors), so a parent's name is judged by how well it gathers its own children's
names and leaves its siblings' children alone, and a child may trade a little fit for a name
that sits under its parent. Siblings never share a name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHT = 0.2  # a child's full consistency swing (2 * WEIGHT) is worth this much fit score
MARGIN = 0.05  # cosine margin at which a child counts as fully placed (or misplaced)
SWEEPS = 3


@dataclass(frozen=True)
class Options:
    """One topic's acceptable names, best fit first, with their fit scores and unit vectors."""

    keys: list[str]  # the names normalised: siblings may not share one
    scores: np.ndarray  # (k,)
    vectors: np.ndarray  # (k, dim)


def choose_names(options: list[Options], parent: np.ndarray, level: np.ndarray, *,
                 weight: float = WEIGHT, sweeps: int = SWEEPS) -> list[int]:
    """The index of the chosen name in each topic's options.

    `parent` (-1 for the top level) and `level` describe the topics; every topic has at least
    one option (a topic with one option keeps it). The start is each topic's first option
    that no sibling earlier in topic order took; a change is kept only when it raises the total.
    """
    chosen = _distinct_start(options, parent)
    names = np.stack([o.vectors[c] for o, c in zip(options, chosen)]).astype(np.float32)
    levels = {int(lvl): np.flatnonzero(level == lvl) for lvl in np.unique(level)}
    for _ in range(sweeps):
        changed = False
        for topic in range(len(options)):
            if len(options[topic].keys) < 2:
                continue
            gain = options[topic].scores + weight * _placement(topic, options[topic].vectors, names, parent,
                                                               level, levels)
            taken = {options[s].keys[chosen[s]] for s in _siblings(topic, parent, levels[int(level[topic])])}
            allowed = [i for i, key in enumerate(options[topic].keys) if key not in taken]
            best = max(allowed, key=lambda i: (gain[i], -i))
            if gain[best] > gain[chosen[topic]] + 1e-9:
                chosen[topic], names[topic], changed = best, options[topic].vectors[best], True
        if not changed:
            break
    return chosen


def _placement(topic: int, candidates: np.ndarray, names: np.ndarray, parent: np.ndarray, level: np.ndarray,
               levels: dict[int, np.ndarray]) -> np.ndarray:
    """(k,) the consistency terms that depend on `topic`'s name, for each candidate name:
    its own placement under its parent, and the placement of every topic one level down."""
    lvl = int(level[topic])
    total = np.zeros(len(candidates), np.float32)
    if parent[topic] >= 0:
        ups = levels[lvl - 1]
        similarity = candidates @ names[ups].T  # (k, parents)
        own = ups == parent[topic]
        total += _clipped(similarity[:, own][:, 0] - similarity[:, ~own].max(axis=1, initial=-1.0))
    children = levels.get(lvl + 1)
    if children is not None:
        peers = levels[lvl]
        similarity = names[children] @ names[peers].T  # (children, peers), this topic's column replaced below
        column = int(np.flatnonzero(peers == topic)[0])
        mine = parent[children] == topic
        own_column = np.searchsorted(peers, parent[children])
        own = similarity[np.arange(len(children)), own_column]
        similarity[np.arange(len(children)), own_column] = -np.inf
        similarity[:, column] = -np.inf
        other = similarity.max(axis=1)  # nearest parent that is neither its own nor this topic
        with_candidate = names[children] @ candidates.T  # (children, k)
        margin = np.where(mine[:, None], with_candidate - other[:, None],
                          own[:, None] - np.maximum(other[:, None], with_candidate))
        total += _clipped(margin).sum(axis=0)
    return total


def _clipped(margin: np.ndarray) -> np.ndarray:
    return np.clip(margin / MARGIN, -1.0, 1.0)


def _siblings(topic: int, parent: np.ndarray, peers: np.ndarray) -> np.ndarray:
    return peers[(parent[peers] == parent[topic]) & (peers != topic)]


def _distinct_start(options: list[Options], parent: np.ndarray) -> list[int]:
    """Each topic's first option that no sibling earlier in topic order took (or its first)."""
    taken: dict[int, set[str]] = {}
    chosen = []
    for topic, o in enumerate(options):
        used = taken.setdefault(int(parent[topic]), set())
        pick = next((i for i, key in enumerate(o.keys) if key not in used), 0)
        used.add(o.keys[pick])
        chosen.append(pick)
    return chosen
