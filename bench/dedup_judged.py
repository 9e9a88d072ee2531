"""Judged precision of "remove duplicates": removable records drawn at random, each beside the
record kept in its place, with the kind and similarity of their pair.

    python bench/dedup_judged.py            # both datasets, 100 draws each (seed 0)

Datasets (bench/dedup_data.py, MiniLM neighbours as `atlas build` uses below 50k records): the
bundled sample (8,000 Debian descriptions) and 20,000 PyPI summaries. The draws are written to
bench/out/dedup_judged.md; docs/dedup_judged.md is the judged copy (a verdict per draw: `dup`
for a true duplicate, the same text or the same text with small edits, else `no`), from which
this command prints the precision. It also prints each dataset's removable share before (groups
are connected components over every kind, one survivor each: removal follows chains) and after
(no chains, template pairs kept), and for PyPI the share removable among records whose summary
differs from another's only where each names its own package.
"""

import argparse
import random
import re
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from dedup_data import DATASETS, OUT, ROOT, load

from atlas.pipeline.dedup import (
    KINDS,
    REMOVED_BY_DEFAULT,
    components,
    embedder_reads,
    find_duplicates,
    ranks,
    replacements,
)
from atlas.pipeline.minhash import normalize
from atlas.settings import DedupSettings

JUDGED = ROOT / "docs" / "dedup_judged.md"
HEADER = "| # | dataset | id | kind | similarity | removed | kept in its place | verdict | reason |"


def chained(by_kind: list[np.ndarray], rank: np.ndarray) -> np.ndarray:
    """int64 (N,): the record kept in each one's place before: one survivor per connected
    component of all pairs, whatever joins them."""
    group = components(by_kind, len(rank))[0]
    replaced_by = np.arange(len(rank))
    members = np.flatnonzero(group >= 0)
    members = members[np.lexsort((rank[members], group[members]))]
    first = members[np.diff(group[members], prepend=-1) != 0]
    best = np.full(group.max() + 1 if len(members) else 0, -1)
    best[group[first]] = first
    replaced_by[members] = best[group[members]]
    return replaced_by


def pair_similarity(dups, norm: list[str]) -> dict:
    """{(text a, text b, kind): similarity}, by normalised text (exact copies count as one)."""
    out = {}
    for (a, b), kind, sim in zip(dups.pairs.edges.T.tolist(), dups.pairs.kind.tolist(), dups.pairs.similarity):
        key = (*sorted((norm[a], norm[b])), kind)
        out[key] = max(out.get(key, 0.0), float(sim))
    return out


def names_only(texts: list[str], names: list[str]) -> np.ndarray:
    """Bool (N,): the summary equals another's once each names its own package (the words of
    its name masked), while the two differ as written."""
    norm = normalize(texts).to_pylist()
    masked = []
    for text, name in zip(norm, names):
        parts = set(re.split(r"[-_.]+", name.lower())) | {re.sub(r"[-_.]", "", name.lower())}
        masked.append(" ".join("<name>" if word in parts else word for word in text.split()))
    by_mask: dict[str, set] = {}
    for mask, text in zip(masked, norm):
        by_mask.setdefault(mask, set()).add(text)
    return np.array(["<name>" in m and len(by_mask[m]) > 1 for m in masked])


def cell(text: str, width: int) -> str:
    text = " ⏎ ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    text = text if len(text) <= width else text[:width - 1] + "…"
    return text.replace("|", "\\|")


def read_verdicts(path: Path) -> dict[tuple[str, str], str]:
    """{(dataset, id): verdict} from a judged table."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if len(cells) == 9 and cells[0].isdigit() and cells[7] in ("dup", "no"):
                out[(cells[1], cells[2].strip("`"))] = cells[7]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=160, help="characters of each text in the table")
    parser.add_argument("--embedder", default="minilm", help="minilm (as `atlas build` below 50k records) or static")
    args = parser.parse_args()
    verdicts = read_verdicts(JUDGED)
    rows, full = [], []
    for name in DATASETS:
        texts, empty, neighbours, ids = load(name, args.embedder)
        start = time.perf_counter()
        dups = find_duplicates(texts, empty, neighbours, settings=DedupSettings())
        seconds = time.perf_counter() - start
        print(f"\n## {name}: {len(texts):,} records, dedup {seconds:.1f} s")
        by_kind = dups.pairs.by_kind()
        rank = ranks(-pc.utf8_length(texts).to_numpy(zero_copy_only=False))
        replaced_by, link = replacements(by_kind, rank, REMOVED_BY_DEFAULT)
        every_script = find_duplicates(texts, empty, neighbours, settings=DedupSettings(semantic_latin_only=False))
        before = chained(every_script.pairs.by_kind(), rank)
        unread = ~embedder_reads(texts) & ~empty
        print(f"texts mostly in other scripts than Latin: {unread.sum():,} ({unread.mean():.2%}); pairs their "
              f"embedding links made, now dropped: {every_script.pairs.kind.size - dups.pairs.kind.size:,}")
        after = replaced_by != np.arange(len(rank))
        n = len(rank)
        print("pairs by kind:", {KINDS[c]: int((dups.pairs.kind == c).sum()) for c in range(1, len(KINDS))})
        print(f"removable: before {(before != np.arange(n)).mean():.2%} (chains, every kind), "
              f"after {after.mean():.2%} (no chains, {', '.join(REMOVED_BY_DEFAULT)}); with template too: "
              f"{(replacements(by_kind, rank, KINDS[1:])[0] != np.arange(n)).mean():.2%}")
        print("removable by kind of pair:", {KINDS[c]: int((link == c).sum()) for c in range(1, len(KINDS))})
        norm = normalize(texts).to_pylist()
        if name == "pypi":
            named = names_only(texts.to_pylist(), ids.to_pylist())
            other_text = after & (np.array(norm, object) != np.array(norm, object)[replaced_by])
            print(f"summaries that differ from another's only where each names its own package: {named.sum():,}; "
                  f"removable before {(before != np.arange(n))[named].mean():.1%}, after {after[named].mean():.1%} "
                  f"(for a different text {other_text[named].mean():.1%})")
        similarity = pair_similarity(dups, norm)
        text, id_list = texts.to_pylist(), ids.to_pylist()
        drawn = random.Random(args.seed).sample(list(np.flatnonzero(after)), min(args.draws, int(after.sum())))
        judged = []
        for number, r in enumerate(drawn, 1):
            s, kind = int(replaced_by[r]), int(link[r])
            sim = 1.0 if norm[r] == norm[s] else similarity.get((*sorted((norm[r], norm[s])), kind), float("nan"))
            verdict = verdicts.get((name, id_list[r]), "")
            judged.append(verdict)
            rows.append(f"| {number} | {name} | `{id_list[r]}` | {KINDS[kind]} | {sim:.2f} | "
                        f"{cell(text[r], args.width)} | {cell(text[s], args.width)} | {verdict} | |")
            full.append(f"### {name} {number}: {KINDS[kind]} {sim:.2f}\n--- removed {id_list[r]}\n{text[r]}\n"
                        f"--- kept {id_list[s]}\n{text[s]}\n")
        marked = [v for v in judged if v]
        if marked:
            print(f"judged precision: {marked.count('dup')} of {len(marked)} true duplicates "
                  f"({marked.count('dup') / len(marked):.0%}), from {JUDGED.relative_to(ROOT)}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "dedup_judged.md").write_text("\n".join([HEADER, "|---|---|---|---|---|---|---|---|---|", *rows]) + "\n")
    (OUT / "dedup_judged_full.txt").write_text("\n".join(full))
    print(f"\n{len(rows)} draws -> {OUT / 'dedup_judged.md'} (whole texts: dedup_judged_full.txt)")


if __name__ == "__main__":
    main()
