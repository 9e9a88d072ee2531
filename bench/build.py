"""Build a map and report per-stage seconds, records/s and peak RSS as a markdown table row.

    python bench/build.py bench/out/pypi_100k.parquet --text summary --id name --embedder static
"""

import argparse
import json
import resource
import time
from pathlib import Path

from atlas.pipeline.run import build
from atlas.settings import BuildSettings, EmbedSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("--text", required=True)
    parser.add_argument("--id")
    parser.add_argument("--embedder", default="auto")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, help="as `atlas build --seed` (default: none, all cores)")
    args = parser.parse_args()
    out = args.out or Path("bench/out") / f"{args.source.stem}_{args.embedder}_map"
    settings = BuildSettings(text_columns=(args.text,), id_column=args.id, seed=args.seed,
                             embed=EmbedSettings(embedder=args.embedder))
    start = time.perf_counter()
    result = build(args.source, out, settings, force=True, quiet=True, log=print)
    wall = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    m = result.manifest()
    stages = {k: (v["seconds"], v["records_per_s"]) for k, v in m["stages"].items()}
    print(json.dumps({"records": m["records"], "wall_s": round(wall, 1), "peak_rss_gib": round(peak_gib, 2),
                      "stages": stages, "topics_per_level": m["topics_per_level"],
                      "duplicates": m["duplicates"]}, indent=1))
    cells = " | ".join(f"{s:.1f} s ({r:,.0f}/s)" for s, r in stages.values())
    print(f"| {m['records']:,} | {args.embedder} | {cells} | {wall:.0f} s | {peak_gib:.2f} GiB |")


if __name__ == "__main__":
    main()
