"""Build a map per embedder and print per-stage seconds (records/s), total and peak RSS as a
markdown table (the build table of docs/BENCHMARKS.md), plus each build's manifest summary.

    python bench/build.py bench/out/pypi_100k.parquet --text summary --id name --embedder static
    python bench/build.py sample_data/debian_packages.parquet --text description --id package \\
        --embedder static minilm --seed 42 --labels keywords
    python bench/build.py bench/out/pypi_100k.parquet --text summary --id name --embedder static \\
        --labels keywords --fit-sample 25000 --out /tmp/maps

The same code path as `atlas build`. `--labels` as there (default: the LLM when one is
installed); LLM labels start from an empty answer cache, so their time is a cold one. Each
build runs in its own process, so a row's peak RSS is its own build's `ru_maxrss`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from atlas.llm.models import naming_models

RATED = {"embed", "neighbors", "project", "cluster", "keywords", "dedup"}
STAGES = ["ingest", "embed", "neighbors", "project", "cluster", "keywords", "label", "dedup", "write", "index", "ann"]
ESTIMATED = ["embed", "project", "label"]  # stages that print an estimate before they start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("--text", required=True)
    parser.add_argument("--id")
    parser.add_argument("--embedder", nargs="+", default=["auto"], help="one row each")
    parser.add_argument("--labels", choices=["llm", "keywords"], help="as `atlas build --labels`")
    parser.add_argument("--seed", type=int, help="as `atlas build --seed` (default: none, all cores)")
    parser.add_argument("--fit-sample", type=int, help="UMAP's fit sample (default: ProjectSettings.fit_sample)")
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="maps go to OUT/STEM_EMBEDDER")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: build with this embedder, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(build_one(args, args.one)))
        return
    results = []
    for embedder in args.embedder:
        command = [sys.executable, __file__, *sys.argv[1:], "--one", embedder]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for result in results:
        print(json.dumps(result["manifest"]), file=sys.stderr)
    print("| records | embedder, seed, labels | " + " | ".join(STAGES) + " | total | peak RSS |")
    print("|---|---|" + "---|" * (len(STAGES) + 2))
    for result in results:
        print(row(result))
    print("\n| records | embedder | " + " | ".join(f"{s}: estimate / measured" for s in ESTIMATED) + " |")
    print("|---|---|" + "---|" * len(ESTIMATED))
    for result in results:
        print(estimates_row(result))


def build_one(args: argparse.Namespace, embedder: str) -> dict:
    from atlas.pipeline.run import build
    from atlas.settings import BuildSettings, EmbedSettings, LabelSettings, ProjectSettings

    project = ProjectSettings(**({"fit_sample": args.fit_sample} if args.fit_sample else {}))
    settings = BuildSettings(text_columns=(args.text,), id_column=args.id, seed=args.seed,
                             embed=EmbedSettings(embedder=embedder), label=LabelSettings(method=args.labels),
                             project=project)
    out = args.out / f"{args.source.stem}_{embedder}"
    with tempfile.TemporaryDirectory() as cache:
        cold_answer_cache(Path(cache))
        start = time.perf_counter()
        manifest = build(args.source, out, settings, force=True, quiet=True, log=lambda m: print(m, file=sys.stderr))
        wall = time.perf_counter() - start
    m = manifest.manifest()
    return {"wall_s": round(wall, 1), "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "seed": args.seed, "manifest": {k: m[k] for k in ("records", "embedder", "labels", "stages",
                                                              "topics_per_level", "duplicates")}}


def cold_answer_cache(folder: Path) -> None:
    """Point ATLAS_CACHE at `folder`, holding links to the cached models but no label answers."""
    from atlas.settings import cache_dir

    if cache_dir().is_dir():
        for item in cache_dir().iterdir():
            if item.name != "label_answers.sqlite":
                (folder / item.name).symlink_to(item.resolve())
    os.environ["ATLAS_CACHE"] = str(folder)


def row(result: dict) -> str:
    m = result["manifest"]
    stages = m["stages"]
    cells = [cell(s, stages.get(s), m["labels"]) for s in STAGES]
    info = m["labels"]
    labels = naming_models(info["model"], info.get("finest_model")) if "model" in info else "keywords"
    name = m["embedder"]["spec"] or m["embedder"]["name"]
    seed = "none" if result["seed"] is None else result["seed"]
    return (f"| {m['records']:,} | {name}, {seed}, {labels} | " + " | ".join(cells)
            + f" | {result['wall_s']:,.0f} s | {result['peak_rss_gib']:.2f} GiB |")


def estimates_row(result: dict) -> str:
    """Each estimated stage's printed estimate against its time, and their ratio."""
    m = result["manifest"]
    cells = []
    for stage in ESTIMATED:
        info = m["stages"].get(stage, {})
        guess = info.get("estimate_s")
        cells.append("–" if guess is None else
                     f"{guess:.0f} s / {info['seconds']:.0f} s ({guess / max(info['seconds'], 1e-9):.2f}x)")
    return f"| {m['records']:,} | {m['embedder']['spec'] or m['embedder']['name']} | " + " | ".join(cells) + " |"


def cell(stage: str, info: dict | None, labels: dict) -> str:
    """Seconds, with records/s where a stage takes a while; seconds per topic for LLM labels;
    – for a stage the build skipped (the ANN index up to SearchSettings.index_from records)."""
    if info is None:
        return "–"
    if stage == "label":
        return f"{info['seconds']:.1f} s ({labels['seconds_per_topic']:.2f} s/topic)" if "model" in labels else "–"
    rate = f" ({info['records_per_s']:,.0f}/s)" if stage in RATED and info["seconds"] >= 0.5 else ""
    return f"{info['seconds']:.1f} s{rate}"


if __name__ == "__main__":
    main()
