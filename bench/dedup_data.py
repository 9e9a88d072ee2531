"""Texts and MiniLM neighbours for the dedup benchmarks, computed once and cached in bench/out/.

    python bench/dedup_data.py            # both datasets: the bundled sample and 20k PyPI summaries

`load(name)` returns (texts, empty, neighbours, extra columns); the first call embeds (minutes on a
2-core box), later calls read bench/out/dedup_{name}.npz.
"""

import argparse
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pypi import TSV as PYPI_TSV

from atlas.pipeline.neighbors import Neighbors

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SAMPLE = ROOT / "sample_data" / "debian_packages.parquet"
DATASETS = ("sample", "pypi")


def read_texts(name: str, pypi_tsv: Path = PYPI_TSV, records: int = 20_000) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(texts, names): the sample's descriptions as `atlas demo` reads them, or `records`
    non-empty PyPI summaries drawn at random with their package names (the pool that
    bench/dedup_planted.py plants its variants in)."""
    if name == "sample":
        from atlas.pipeline.ingest import read_dataset

        data = read_dataset(SAMPLE, text_columns=("description",), id_column="package")
        return data.text, data.table.column("id")
    return pypi_pool(random.Random(0), records, pypi_tsv)


def pypi_pool(rng: random.Random, records: int = 20_000,
              pypi_tsv: Path = PYPI_TSV) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(summaries, names) of `records` non-empty PyPI summaries drawn by `rng`."""
    from pypi import read_pypi

    table = read_pypi(pypi_tsv)
    summaries = table.column("summary").to_pylist()
    rows = rng.sample([i for i, s in enumerate(summaries) if s is not None and s.strip()], records)
    table = table.take(pa.array(rows))
    return pa.chunked_array([table.column("summary").combine_chunks()]), table.column("name")


def load(name: str, embedder: str = "minilm") -> tuple[pa.ChunkedArray, np.ndarray, Neighbors, pa.ChunkedArray]:
    """(texts, empty, neighbours (k=15), names) of one dataset, cached in bench/out/."""
    texts, names = read_texts(name)
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0).to_numpy(zero_copy_only=False)
    cache = cache_path(name, texts, embedder).with_suffix(".neighbors.npz")
    if not cache.exists():
        from atlas.pipeline.neighbors import nearest_neighbors

        nb = nearest_neighbors(embeddings(name, texts, embedder), k=15, seed=0)
        np.savez(cache, indices=nb.indices, distances=nb.distances)
    arrays = np.load(cache)
    return texts, empty, Neighbors(arrays["indices"], arrays["distances"]), names


def cache_path(name: str, texts: pa.ChunkedArray, embedder: str) -> Path:
    """Where the vectors of a dataset of len(texts) records are kept."""
    return OUT / f"dedup_{name}{len(texts)}_{embedder}.npy"


def embeddings(name: str, texts: pa.ChunkedArray, embedder: str = "minilm") -> np.ndarray:
    """float32 unit vectors of the texts, computed once and cached (cache_path)."""
    cache = cache_path(name, texts, embedder)
    if not cache.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        np.save(cache, encode(texts.to_pylist(), embedder))
    return np.load(cache)


def encode(texts: list[str], embedder: str = "minilm") -> np.ndarray:
    """Unit vectors, embedded in the build's chunks (MiniLM sorts each chunk by length)."""
    from atlas.pipeline.embed import load_embedder
    from atlas.settings import EmbedSettings, cache_dir

    settings = EmbedSettings()
    model = load_embedder(embedder, settings, cache_dir())
    return np.concatenate([np.asarray(model.encode(texts[i:i + settings.chunk_size]), np.float32)
                           for i in range(0, len(texts), settings.chunk_size)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args()
    for name in DATASETS:
        texts, _, nb, _ = load(name, args.embedder)
        print(f"{name}: {len(texts):,} texts, neighbours {nb.indices.shape}")


if __name__ == "__main__":
    main()
