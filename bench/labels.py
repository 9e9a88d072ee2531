"""Label a map's topics with each candidate model, cold cache, and compare.

Prints seconds per topic per model, fallbacks, and a markdown table of randomly chosen topics
with their keyword label and each model's label (the map itself is not changed):

    python bench/labels.py maps/debian-packages --models smollm2 gemma3-270m --sample 15
"""

import argparse
import os
import random
import shutil
import tempfile
from pathlib import Path

from atlas.mapdir import MapDir
from atlas.pipeline.relabel import relabel
from atlas.settings import LabelSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--sample", type=int, default=15, help="topics shown side by side")
    parser.add_argument("--threads", type=int, default=LabelSettings.threads)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="keep answers here (resumable; timings are only cold "
                        "on the first run) [default: a temporary folder]")
    args = parser.parse_args()
    topics = MapDir(args.map).topics().to_pylist()
    labels = {}
    print("| model | prompt form | topics | total | per topic | fell back to keywords |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            os.environ["ATLAS_CACHE"] = str((args.cache or Path(tmp)) / model)
            copy = MapDir(shutil.copytree(args.map, Path(tmp) / f"map-{model}", ignore=shutil.ignore_patterns("tiles")))
            result = relabel(copy, LabelSettings(method="llm", model=model, threads=args.threads), quiet=True)
            info = copy.manifest()["labels"]
            print(f"| {info['model']} | {info['prompt_form']} | {len(topics):,} | {info['seconds']:,.0f} s | "
                  f"{info['seconds_per_topic']:.2f} s | {info['fell_back']} ({info['fell_back'] / len(topics):.0%}) |")
            labels[model] = result
    chosen = sorted(random.Random(args.seed).sample(range(len(topics)), min(args.sample, len(topics))))
    print("\n| topic (level, size) | keywords | " + " | ".join(args.models) + " |")
    print("|---|---|" + "---|" * len(args.models))
    for t in chosen:
        cells = [f"{labels[m].label[t]}{'' if labels[m].source[t] != 'keywords' else ' (fell back)'}"
                 for m in args.models]
        print(f"| {t} ({topics[t]['level']}, {topics[t]['size']:,}) | {topics[t]['keyword_label']} | "
              + " | ".join(cells) + " |")
    print("\nDescriptions (" + args.models[0] + "):")
    for t in chosen[:5]:
        print(f"- {labels[args.models[0]].label[t]}: {labels[args.models[0]].description[t]}")


if __name__ == "__main__":
    main()
