"""Topic balance: each topic's share of the kept records at one level, and quotas.

A quota caps every topic at `cap` records, or at `cap_pct` percent of the kept total, or
samples to a `target` total while flattening the distribution (water-filling: every topic
keeps min(size, L), with L chosen so the total is the target).

Which records a quota keeps is deterministic: in each topic, duplicate survivors first, then
the records nearest the topic's centre in embedding space (cosine to the mean vector of its
kept records: the most typical ones), and a seeded random order breaks ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atlas.errors import AtlasError
from atlas.vectors import centre_similarity, topic_centres


@dataclass
class Quota:
    """A quota's preview (kept records per topic before and after) and what it removes."""

    level: int
    topics: np.ndarray  # topic ids at `level` that hold kept records
    before: np.ndarray  # kept records per topic now
    after: np.ndarray  # kept records per topic once applied
    remove: np.ndarray  # bool (N,) in points order: the records the quota removes

    def preview(self, labels: dict[int, str] | None = None) -> list[dict]:
        """One row per topic: counts and shares before and after."""
        total_before, total_after = max(self.before.sum(), 1), max(self.after.sum(), 1)
        return [{"topic_id": int(t), "label": (labels or {}).get(int(t), ""),
                 "before": int(b), "share_before": round(float(b / total_before), 5),
                 "after": int(a), "share_after": round(float(a / total_after), 5)}
                for t, b, a in zip(self.topics, self.before, self.after)]


def shares(topic: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(topic ids, kept records per topic) for the topic ids of one level, in points order."""
    ids, counts = np.unique(topic[kept], return_counts=True)
    return ids, counts


def allowance(sizes: np.ndarray, *, cap: int | None = None, cap_pct: float | None = None,
              target: int | None = None) -> np.ndarray:
    """How many records each topic keeps under exactly one of the three quotas."""
    if sum(v is not None for v in (cap, cap_pct, target)) != 1:
        raise AtlasError("a quota is exactly one of cap=N (records per topic), cap_pct=P (percent of the "
                         "kept total per topic) or target=T (total, flattening the topics)")
    if cap is not None:
        return np.minimum(sizes, _positive(cap, "cap"))
    if cap_pct is not None:
        if not 0 < cap_pct <= 100:
            raise AtlasError(f"cap_pct is a percentage in (0, 100], not {cap_pct}")
        return np.minimum(sizes, int(sizes.sum() * cap_pct / 100))
    return water_fill(sizes, _positive(target, "target"))


def water_fill(sizes: np.ndarray, target: int) -> np.ndarray:
    """min(size, L) per topic with the integer level L as high as the target allows; the few
    records left over go one each to the largest topics above L (then lowest index)."""
    if target >= sizes.sum():
        return sizes.copy()
    low, high = 0, int(sizes.max())
    while low < high:  # the highest level whose total stays within the target
        mid = (low + high + 1) // 2
        low, high = (mid, high) if np.minimum(sizes, mid).sum() <= target else (low, mid - 1)
    out = np.minimum(sizes, low)
    above = np.flatnonzero(sizes > low)
    extra = above[np.lexsort((above, -sizes[above]))][: target - out.sum()]
    out[extra] += 1
    return out


def _positive(value: int | None, name: str) -> int:
    """`value` if it is a whole number >= 1, capped at int64 (a quota above every topic's size
    keeps them all)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise AtlasError(f"{name} is a whole number of records, at least 1, not {value}")
    return min(int(value), np.iinfo(np.int64).max)


def preference(topic: np.ndarray, kept: np.ndarray, survivor: np.ndarray, embeddings: np.ndarray,
               seed: int) -> np.ndarray:
    """A rank per record (0 = keep first) within its topic: survivors, then nearest the topic's
    centre, then a seeded random tie-break. Only kept records are ranked; others get -1."""
    centres = topic_centres(embeddings, topic, int(topic.max()) + 1, weights=kept)
    similarity = centre_similarity(embeddings, topic, centres)
    noise = np.random.default_rng(seed).random(len(topic))
    members = np.flatnonzero(kept)
    order = members[np.lexsort((noise[members], -similarity[members], ~survivor[members], topic[members]))]
    starts = np.r_[True, topic[order][1:] != topic[order][:-1]][:len(order)]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    rank = np.full(len(topic), -1, np.int64)
    rank[order] = np.arange(len(order)) - first
    return rank


def quota(topic: np.ndarray, kept: np.ndarray, survivor: np.ndarray, embeddings: np.ndarray, *, level: int,
          seed: int = 0, cap: int | None = None, cap_pct: float | None = None,
          target: int | None = None) -> Quota:
    """The preview and removals of a quota over the kept records, `topic` being each record's
    topic id at `level` (points order)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AtlasError(f"seed is a whole number, 0 or more, not {seed!r}")
    ids, before = shares(topic, kept)
    after = allowance(before, cap=cap, cap_pct=cap_pct, target=target)
    limit = np.zeros(int(topic.max()) + 1, np.int64)
    limit[ids] = after
    rank = preference(topic, kept, survivor, embeddings, seed)
    return Quota(level, ids, before, after, kept & (rank >= limit[topic]))
