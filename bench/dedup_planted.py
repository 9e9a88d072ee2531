"""Dedup recall: plant variants of real records and count how many Atlas pairs with their original.

    python bench/dedup_planted.py --records 20000 --planted 1000 [--embedder minilm|static]

The pool is bench/dedup_data.py's random PyPI summaries (their vectors cached there; the
embedding rate is printed when they are computed); 1,000 of them (4+ words) get one planted
variant each, a quarter per kind: case changed,
punctuation/spacing changed, a word dropped, a word appended. A variant is found when it is
paired directly with its original (or an exact copy of it) by a kind that "remove duplicates"
removes (exact, near, semantic): then one of the two goes and the other replaces it. Also
printed: the same count by the looser rule used before (in the same connected group).
"""

import argparse
import random
import sys
import time

import numpy as np
import pyarrow as pa
from dedup_data import cache_path, embeddings, encode, pypi_pool

from atlas.pipeline.dedup import KINDS, REMOVED_BY_DEFAULT, components, find_duplicates
from atlas.pipeline.neighbors import nearest_neighbors
from atlas.settings import DedupSettings

EXTRA_WORDS = ["library", "tool", "python", "package", "simple", "fast", "client", "api", "new", "utils"]
VARIANTS = ["case", "punctuation", "drop", "append"]
VARIANT_NAMES = ["case changed", "punctuation or spacing changed", "a word dropped", "a word appended"]


def vary(text: str, kind: str, rng: random.Random) -> str:
    words = text.split()
    if kind == "case":
        return rng.choice([text.upper(), text.lower(), text.title(), text.swapcase()])
    if kind == "punctuation":
        return rng.choice([text.rstrip(".") + ".", text.replace(" ", "  "), text.replace(",", " ,"),
                           "".join(c for c in text if c.isalnum() or c.isspace()) + "!"])
    if kind == "drop":
        drop = rng.randrange(len(words))
        return " ".join(words[:drop] + words[drop + 1:])
    return text + " " + rng.choice(EXTRA_WORDS)


def linked(dups, kinds: tuple[str, ...], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bool per (a, b): exact copies, or paired directly (copies counting as one) by one of `kinds`."""
    n = len(dups.group)
    copy = components([dups.pairs.by_kind()[0]] + [np.zeros((2, 0), np.int64)] * 3, n)[0]
    copy = np.where(copy >= 0, copy, -1 - np.arange(n))
    codes = [KINDS.index(k) for k in kinds]
    edges = dups.pairs.edges[:, np.isin(dups.pairs.kind, codes)]
    known = {tuple(p) for p in np.sort(copy[edges], axis=0).T.tolist()}
    return np.array([ca == cb or (min(ca, cb), max(ca, cb)) in known for ca, cb in zip(copy[a], copy[b])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--embedder", default="minilm", help="minilm (as `atlas build` below 50k records) or static")
    defaults = DedupSettings()
    parser.add_argument("--near-threshold", type=float, default=defaults.near_threshold)
    parser.add_argument("--word-threshold", type=float, default=defaults.word_threshold,
                        help="above 1: no word-set pass (character 5-grams only)")
    parser.add_argument("--semantic-threshold", type=float, default=defaults.semantic_threshold)
    args = parser.parse_args()
    settings = DedupSettings(near_threshold=args.near_threshold, word_threshold=args.word_threshold,
                             semantic_threshold=args.semantic_threshold)
    rng = random.Random(0)
    texts_pool, _ = pypi_pool(rng, args.records)
    pool = texts_pool.to_pylist()
    eligible = [i for i, s in enumerate(pool) if len(s.split()) >= 4]
    originals = rng.sample(eligible, args.planted)
    planted = [(i, VARIANTS[j % 4], vary(pool[i], VARIANTS[j % 4], rng)) for j, i in enumerate(originals)]
    texts = pool + [v for _, _, v in planted]

    fresh = not cache_path("pypi", texts_pool, args.embedder).exists()
    start = time.perf_counter()
    vectors = embeddings("pypi", texts_pool, args.embedder)
    if fresh:
        seconds = time.perf_counter() - start
        print(f"Embedding ({args.embedder}, in the build's chunks, with the model's loading): {len(pool):,} texts "
              f"in {seconds:.1f} s = {len(pool) / seconds:,.0f} texts/s")
    vectors = np.concatenate([vectors, encode([v for _, _, v in planted], args.embedder)])
    start = time.perf_counter()
    neighbors = nearest_neighbors(vectors, k=15, seed=0)
    dups = find_duplicates(pa.chunked_array([pa.array(texts)]), np.zeros(len(texts), bool), neighbors,
                           settings=settings)
    seconds = time.perf_counter() - start

    n = len(pool)
    variant = np.arange(n, len(texts))
    original = np.array([o for o, _, _ in planted])
    kinds = np.array([k for _, k, _ in planted])
    found = linked(dups, REMOVED_BY_DEFAULT, variant, original)
    grouped = (dups.group[variant] >= 0) & (dups.group[variant] == dups.group[original])
    print(f"`python {' '.join(sys.argv)}`: thresholds near {settings.near_threshold}, words "
          f"{settings.word_threshold}, semantic {settings.semantic_threshold}; neighbours + dedup of "
          f"{len(texts):,} texts: {seconds:.1f} s\n")
    print("| kind of variant | found (paired directly, exact/near/semantic) |\n|---|---|")
    for kind, name in zip(VARIANTS, VARIANT_NAMES):
        print(f"| {name} | {found[kinds == kind].mean():.1%} |")
    print(f"| **all** | **{found.mean():.1%}** (in the same group, the looser rule used before: "
          f"{grouped.mean():.1%}) |\n")
    print("kinds in the pool:", {KINDS[c] or "none": int((dups.kind[:n] == c).sum()) for c in range(len(KINDS))})
    misses = np.flatnonzero(~found)
    print(f"\nsome missed variants ({len(misses)}):")
    for j in misses[:args.samples]:
        kind = KINDS[dups.kind[variant[j]]]
        print(f"- [{kinds[j]}, {kind}] {pool[original[j]][:80]!r} -> {texts[variant[j]][:80]!r}")


if __name__ == "__main__":
    main()
