"""One settings dataclass per stage: defaults and help in one place.

The CLI, the library and the manifest all read these; nothing else repeats them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


def _help(default, text: str):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class EmbedSettings:
    embedder: str = _help(
        "auto", "minilm | static | auto | PATH to a local sentence-transformers model"
    )
    auto_minilm_limit: int = _help(
        50_000, "auto uses MiniLM up to this many records, the static embedder above it"
    )
    batch_size: int = _help(16, "texts per forward pass (MiniLM is fastest at 16 on CPU)")
    chunk_size: int = _help(8192, "records per saved chunk; an interrupted build resumes here")


@dataclass(frozen=True)
class NeighborSettings:
    k: int = _help(15, "nearest neighbours per record in embedding space (UMAP and dedup)")


@dataclass(frozen=True)
class ProjectSettings:
    min_dist: float = _help(0.05, "UMAP min_dist: smaller packs topics tighter")
    n_epochs: int | None = _help(None, "UMAP epochs (None: 200 above 10k records, else 500)")


@dataclass(frozen=True)
class ClusterSettings:
    min_cluster_size: int | None = _help(
        None, "smallest fine topic (None: max(10, sqrt(N)/4))"
    )
    coarse_range: tuple[int, int] = _help((6, 30), "allowed number of coarse (level 0) topics")
    three_levels_from: int = _help(50_000, "inputs this large get a middle level")


@dataclass(frozen=True)
class KeywordSettings:
    top_n: int = _help(10, "keywords stored per topic")
    label_words: int = _help(3, "keywords joined into the short label")


@dataclass(frozen=True)
class LabelSettings:
    method: str | None = _help(
        None, "llm | keywords (None: llm when a model is installed, else keywords with a notice)"
    )
    model: str | None = _help(
        None, "a bundled model name (smollm2, gemma3-270m) or PATH to a .gguf file (None: smollm2)"
    )
    threads: int = _help(1, "llama.cpp threads: 2 is faster on a quiet 2-core machine, but "
                              "calls stall (60x slower) when anything else wants a core")
    central_texts: int = _help(3, "texts nearest the topic centre shown to the model")
    spread_texts: int = _help(1, "texts further out shown to the model")


@dataclass(frozen=True)
class DedupSettings:
    near_threshold: float = _help(
        0.7, "near duplicates: estimated Jaccard similarity of character 5-gram sets"
    )
    word_threshold: float = _help(
        0.8, "near duplicates: estimated Jaccard similarity of word sets (a word dropped or added)"
    )
    semantic_threshold: float = _help(
        0.95, "semantic duplicates: cosine similarity between embedding neighbours"
    )
    num_perm: int = _help(128, "MinHash permutations")
    bands: int = _help(32, "LSH bands (num_perm / bands rows each)")
    shingle: int = _help(5, "characters per shingle")


@dataclass(frozen=True)
class SearchSettings:
    index_from: int = _help(
        100_000, "maps with more records get an ANN index for semantic search; smaller ones are scanned exactly"
    )
    connectivity: int = _help(16, "ANN index: links per node of the HNSW graph")
    expansion_add: int = _help(128, "ANN index: candidates kept while inserting (build cost vs quality)")
    expansion_search: int = _help(128, "ANN index: candidates kept while searching (recall vs time per query)")


@dataclass(frozen=True)
class BuildSettings:
    text_columns: tuple[str, ...]
    id_column: str | None = None
    embeddings_column: str | None = None
    input_format: str | None = None
    skip_bad_lines: bool = False  # leave out CSV/TSV/JSONL lines that cannot be read, listing them
    seed: int | None = None  # None: parallel UMAP and NN-descent, not reproducible
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    neighbors: NeighborSettings = field(default_factory=NeighborSettings)
    project: ProjectSettings = field(default_factory=ProjectSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    keywords: KeywordSettings = field(default_factory=KeywordSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    search: SearchSettings = field(default_factory=SearchSettings)

    def as_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    """Where built models (the distilled static embedder) are kept between builds."""
    root = os.environ.get("ATLAS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "atlas"
    )
    return Path(root)
