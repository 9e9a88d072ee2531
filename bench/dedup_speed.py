"""Where the dedup stage spends its time, and the cost of "remove duplicates" without chains.

    python bench/dedup_speed.py --rows 0      # all ~886k PyPI summaries (0 = all, else a random sample)
    python bench/dedup_speed.py --rows 200000 --before REF --repeat 2

Runs the dedup stage (atlas.pipeline.dedup.find_duplicates) once under cProfile on the
summaries, with neighbour lists that hold only the record itself (no semantic pairs: the
embedding and kNN stages are not timed here), and prints the seconds of each part. Then times
the survivor choice on the pairs it found: before (one survivor per connected group, chains
allowed) and now (`replacements`, no chains), side by side. With `--before REF`, instead
times the stage as it is and as it was at git revision REF (its atlas/pipeline/dedup.py),
alternating, and prints the best of each.
"""

import argparse
import cProfile
import importlib.util
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dedup_judged import chained
from pypi import TSV, read_pypi

from atlas.pipeline.dedup import REMOVED_BY_DEFAULT, find_duplicates, ranks, replacements
from atlas.pipeline.neighbors import Neighbors
from atlas.settings import DedupSettings

PARTS = {"normalize": "minhash", "exact_pairs": "dedup", "near_pairs": "dedup", "semantic_pairs": "dedup",
         "embedder_reads": "dedup", "of": "templates", "edge_lines": "templates", "classify": "templates",
         "components": "dedup", "replacements": "dedup"}  # function: the module it is in


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--before", metavar="REF", help="compare with the dedup stage at this git revision")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    texts = pc.fill_null(read_pypi(TSV).column("summary"), "")
    if args.rows:
        texts = texts.take(pa.array(np.sort(np.random.default_rng(0).choice(len(texts), args.rows, replace=False))))
    texts = pa.chunked_array([texts.combine_chunks()])
    n = len(texts)
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0).to_numpy(zero_copy_only=False)
    alone = Neighbors(np.arange(n, dtype=np.int32)[:, None], np.zeros((n, 1), np.float32))
    if args.before:
        return compare(_module_at(args.before), texts, empty, alone, args.repeat)
    profile = cProfile.Profile()
    start = time.perf_counter()
    dups = profile.runcall(find_duplicates, texts, empty, alone, settings=DedupSettings())
    total = time.perf_counter() - start
    stats = pstats.Stats(profile).stats
    seconds = {name: sum(v[3] for (path, _, fn), v in stats.items() if fn == name and path.endswith(f"{module}.py"))
               for name, module in PARTS.items()}
    print(f"dedup stage on {n:,} texts: {total:.1f} s (under cProfile)")
    print(" | ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    new = sum(seconds[k] for k in ("embedder_reads", "of", "edge_lines", "classify", "replacements"))
    print(f"parts added by this change (scripts, words, first/last lines, template test, no-chain survivors): "
          f"{new:.1f} s = {new / total:.0%} of the stage")
    by_kind = dups.pairs.by_kind()
    rank = ranks(-pc.utf8_length(texts).to_numpy(zero_copy_only=False))
    for label, run in (("before: one survivor per connected group", lambda: chained(by_kind, rank)),
                       ("now: no chains", lambda: replacements(by_kind, rank, REMOVED_BY_DEFAULT)[0])):
        best = min(_timed(run) for _ in range(3))
        print(f"survivors, {label}: {best * 1000:.0f} ms")


def compare(before, texts, empty, alone, repeat: int) -> None:
    """Best-of-`repeat` seconds of the stage now and at the other revision, alternating."""
    best = {"before": [], "now": []}
    for _ in range(repeat):
        for label, stage in (("before", before.find_duplicates), ("now", find_duplicates)):
            best[label].append(_timed(lambda stage=stage: stage(texts, empty, alone, settings=DedupSettings())))
            print(f"{label}: {best[label][-1]:.1f} s", flush=True)
    print(f"dedup stage on {len(texts):,} texts: before {min(best['before']):.1f} s, now {min(best['now']):.1f} s "
          f"({min(best['now']) / min(best['before']):.2f}x)")


def _module_at(ref: str):
    """atlas/pipeline/dedup.py as it was at git revision `ref`, loaded as its own module."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{ref}:atlas/pipeline/dedup.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "dedup_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("dedup_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["dedup_before"] = module
    spec.loader.exec_module(module)
    return module


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
