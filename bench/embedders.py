"""MiniLM backends side by side: texts/s on short and long texts, and top-10 neighbour agreement.

    python bench/embedders.py        # torch (the reference), ONNX fp32 (`minilm`), ONNX int8; full sets
    python bench/embedders.py --threads --limit 1000   # torch MiniLM by OpenMP wait policy and threads

Data: the bundled sample (8,000 Debian descriptions, ~400 characters) and 20,000 random
non-empty PyPI summaries (~60 characters). Each set is cut into 4 parts and every backend
embeds each part in turn, so a busy machine slows them alike. Agreement: the share of each
record's 10 nearest neighbours (exact cosine kNN) that the reference backend also finds.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pypi import TSV, read_pypi

from atlas.pipeline.embed import load_embedder, minilm_path
from atlas.pipeline.minilm import MiniLMEmbedder
from atlas.pipeline.neighbors import exact_neighbors
from atlas.pipeline.onnx_minilm import onnx_forward, onnx_model_file
from atlas.settings import EmbedSettings, cache_dir

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "debian_packages.parquet"
PARTS = 4


def datasets(pypi_rows: int, limit: int) -> dict[str, list[str]]:
    summaries = pc.drop_null(read_pypi(TSV).column("summary")).to_pylist()
    summaries = [s for s in summaries if s.strip()]
    rng = np.random.default_rng(0)
    pypi = [summaries[i] for i in rng.choice(len(summaries), pypi_rows, replace=False)]
    sample = pq.read_table(SAMPLE, columns=["description"]).column("description").to_pylist()
    sets = {"PyPI summaries": pypi, "Debian sample": sample}
    return {name: texts[:limit] if limit else texts for name, texts in sets.items()}


def load(backend: str):
    if backend == "minilm-onnx-int8":
        source = minilm_path()
        return MiniLMEmbedder.load(source, onnx_forward(onnx_model_file(source, cache_dir(), quantized=True)),
                                   backend, EmbedSettings().batch_size)
    return load_embedder(backend, EmbedSettings(), cache_dir())


def agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    na, nb = (exact_neighbors(v, k + 1).indices[:, 1:] for v in (a, b))
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb)]))


def torch_threads(limit: int) -> None:
    """torch MiniLM's texts/s on PyPI summaries, each setting in a fresh process (OpenMP reads
    OMP_WAIT_POLICY once, at start): spinning threads against sleeping ones, 2 threads against 1."""
    print("| OMP_WAIT_POLICY | torch threads | texts/s |")
    print("|---|---|---|")
    for policy, threads in (("ACTIVE", 2), ("PASSIVE", 2), ("PASSIVE", 1)):
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
        run = subprocess.run([sys.executable, __file__, "--torch-run", str(threads), "--limit", str(limit)],
                             env=env, capture_output=True, text=True, check=True)
        print(f"| {policy} | {threads} | {run.stdout.strip().splitlines()[-1]} |", flush=True)


def torch_run(threads: int, limit: int) -> None:
    import torch

    torch.set_num_threads(threads)
    texts = datasets(20_000, limit)["PyPI summaries"]
    embedder = load("minilm-torch")
    embedder.encode(texts[:32])
    start = time.perf_counter()
    embedder.encode(texts)
    print(f"{len(texts) / (time.perf_counter() - start):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", action="store_true", help="torch MiniLM by OpenMP wait policy and threads")
    parser.add_argument("--torch-run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="minilm-torch,minilm,minilm-onnx-int8", help="the first is the reference")
    parser.add_argument("--pypi", type=int, default=20_000, help="PyPI summaries to draw")
    parser.add_argument("--limit", type=int, default=0, help="embed only this many texts per set (speed only)")
    args = parser.parse_args()
    if args.torch_run:
        return torch_run(args.torch_run, args.limit)
    if args.threads:
        return torch_threads(args.limit or 1000)
    backends = args.backends.split(",")
    embedders = {b: load(b) for b in backends}
    for embedder in embedders.values():  # first-call costs (threads, allocations) out of the timings
        embedder.encode(["warm up"] * 32)
    print("| texts | mean chars | backend | texts/s | top-10 agreement with " + backends[0] + " | mean cosine |")
    print("|---|---|---|---|---|---|")
    for name, texts in datasets(args.pypi, args.limit).items():
        seconds = dict.fromkeys(backends, 0.0)
        vectors = {b: [] for b in backends}
        for part in np.array_split(np.arange(len(texts)), PARTS):
            chunk = [texts[i] for i in part]
            for backend, embedder in embedders.items():
                start = time.perf_counter()
                vectors[backend].append(embedder.encode(chunk))
                seconds[backend] += time.perf_counter() - start
        full = {b: np.concatenate(v) for b, v in vectors.items()}
        reference = full[backends[0]]
        chars = np.mean([len(t) for t in texts])
        for backend in backends:
            agree = agreement(reference, full[backend]) if backend != backends[0] else 1.0
            cosine = float(np.mean(np.sum(reference * full[backend], axis=1)))
            print(f"| {len(texts):,} {name} | {chars:.0f} | {backend} | {len(texts) / seconds[backend]:,.0f} "
                  f"| {agree:.3f} | {cosine:.4f} |", flush=True)


if __name__ == "__main__":
    main()
