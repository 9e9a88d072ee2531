"""Dedup quality: plant variants of real records and count how many Atlas links back.

    python bench/dedup_planted.py --records 20000 --planted 1000 --embedder minilm

Variants, a quarter each: case changed, punctuation/spacing changed, a word dropped,
a word appended. Prints recall per kind as the markdown table of docs/BENCHMARKS.md, the
share of the real records flagged, the embedding rate (texts/s, chunked as the build does),
and a random sample of flagged pairs that were not planted, to check by eye.
"""

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from atlas.pipeline.dedup import KINDS, find_duplicates
from atlas.pipeline.embed import load_embedder
from atlas.pipeline.neighbors import nearest_neighbors
from atlas.settings import DedupSettings, EmbedSettings, cache_dir

KIND_NAMES = ["case changed", "punctuation or spacing changed", "a word dropped", "a word appended"]
EXTRA_WORDS = ["library", "tool", "python", "package", "simple", "fast", "client", "api", "new", "utils"]


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=Path("bench/out/pypi_all.parquet"))
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--samples", type=int, default=25)
    defaults = DedupSettings()
    parser.add_argument("--near-threshold", type=float, default=defaults.near_threshold)
    parser.add_argument("--word-threshold", type=float, default=defaults.word_threshold,
                        help="above 1: no word-set pass (character 5-grams only)")
    parser.add_argument("--semantic-threshold", type=float, default=defaults.semantic_threshold)
    args = parser.parse_args()
    summaries = pq.read_table(args.source, columns=["summary"]).column("summary")
    summaries = pc.drop_null(summaries).to_pylist()
    rng = random.Random(0)
    pool = rng.sample([s for s in summaries if s.strip()], args.records)
    eligible = [i for i, s in enumerate(pool) if len(s.split()) >= 4]
    originals = rng.sample(eligible, args.planted)
    kinds = ["case", "punctuation", "drop", "append"]
    planted = [(i, kinds[j % 4], vary(pool[i], kinds[j % 4], rng)) for j, i in enumerate(originals)]
    texts = pool + [v for _, _, v in planted]
    array = pa.chunked_array([pa.array(texts)])
    empty = np.zeros(len(texts), bool)

    settings = DedupSettings(near_threshold=args.near_threshold, word_threshold=args.word_threshold,
                             semantic_threshold=args.semantic_threshold)
    start = time.perf_counter()
    embed = EmbedSettings()
    embedder = load_embedder(args.embedder, embed, cache_dir())
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    vectors = np.concatenate([embedder.encode(texts[i:i + embed.chunk_size])  # as the build: chunk by chunk
                              for i in range(0, len(texts), embed.chunk_size)])
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    neighbors = nearest_neighbors(vectors, k=15, seed=0)
    dups = find_duplicates(array, empty, neighbors, settings=settings)
    dedup_s = time.perf_counter() - start

    n = len(pool)
    hits = [bool(dups.group[n + j] >= 0 and dups.group[n + j] == dups.group[orig])
            for j, (orig, _, _) in enumerate(planted)]
    found = {k: [h for h, (_, kind, _) in zip(hits, planted) if kind == k] for k in kinds}
    print(f"`python {' '.join(sys.argv)}`: thresholds near {settings.near_threshold}, words "
          f"{settings.word_threshold}, semantic {settings.semantic_threshold}\n")
    print("| kind of variant | found |\n|---|---|")
    for kind, name in zip(kinds, KIND_NAMES):
        print(f"| {name} | {np.mean(found[kind]):.1%} |")
    print(f"| **all** | **{np.mean(hits):.1%}** |\n")
    flagged, removable = (dups.group[:n] >= 0).mean(), (~dups.survivor[:n]).mean()
    exact = (dups.kind[:n] == KINDS.index("exact")).mean()
    print(f"Real records in some duplicate group: {flagged:.2%} ({removable:.2%} removable, i.e. not survivors); "
          f"{exact:.1%} of the pool are exact duplicates.")
    print(f"Embedding ({args.embedder}, in {embed.chunk_size:,}-text chunks as the build does): "
          f"{len(texts):,} texts in {embed_s:.1f} s = {len(texts) / embed_s:,.0f} texts/s "
          f"(loading the model {load_s:.1f} s before); neighbours + dedup {dedup_s:.1f} s.")

    planted_rows = set(originals) | set(range(n, len(texts)))
    survivors = {int(g): i for i, g in enumerate(dups.group) if g >= 0 and dups.survivor[i]}
    others = [i for i in range(n) if dups.group[i] >= 0 and not dups.survivor[i] and i not in planted_rows]
    print(f"\n{args.samples} random flagged records (not planted) beside their group's survivor:")
    for i in random.Random(1).sample(others, min(args.samples, len(others))):
        s = survivors[int(dups.group[i])]
        kind = KINDS[dups.kind[i]]
        print(f"- [{kind}] {texts[i][:90]!r}\n      ~ {texts[s][:90]!r}")
    misses = [(k, pool[o], v) for (o, k, v), hit in zip(planted, hits) if not hit]
    print(f"\nsome missed variants ({len(misses)}):")
    for kind, orig, var in misses[:10]:
        print(f"- [{kind}] {orig[:80]!r} -> {var[:80]!r}")


if __name__ == "__main__":
    main()
