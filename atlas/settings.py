"""One settings dataclass per stage: defaults and help in one place.

The CLI, the library and the manifest all read these; nothing else repeats them.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from atlas.errors import AtlasError


def _help(default, text: str, choices: tuple[str, ...] | None = None, least: int | None = None):
    """A field with its help, and the values it allows: `choices`, or numbers from `least` up."""
    return field(default=default, metadata={"help": text, "choices": choices, "least": least})


@dataclass(frozen=True)
class EmbedSettings:
    embedder: str = _help(
        "auto", "minilm (ONNX Runtime) | minilm-torch (torch; GPU if any) | static | auto | "
                "PATH to a local sentence-transformers model"
    )
    auto_minilm_limit: int = _help(
        50_000, "auto uses MiniLM up to this many records, the static embedder above it (on a GPU: MiniLM always)"
    )
    batch_size: int = _help(16, "texts per forward pass (MiniLM is fastest at 16 on CPU)")
    gpu_batch_size: int = _help(512, "texts per forward pass on a GPU")
    device: str | None = _help(None, "where torch embedders run (None: the CUDA GPU when torch sees one)",
                               choices=("cpu", "cuda"))
    chunk_size: int = _help(8192, "records per saved chunk; an interrupted build resumes here")


@dataclass(frozen=True)
class NeighborSettings:
    k: int = _help(15, "nearest neighbours per record in embedding space (UMAP and dedup)")


@dataclass(frozen=True)
class ProjectSettings:
    min_dist: float = _help(0.05, "UMAP min_dist: smaller packs topics tighter")
    n_epochs: int | None = _help(None, "UMAP epochs (None: 200 above 10k records, else 500)")
    fit_sample: int = _help(200_000, "larger inputs: UMAP fits a random sample this large and places the "
                                     "other records against it")
    place_epochs: int = _help(30, "UMAP epochs that move each record placed against the sample's layout")


@dataclass(frozen=True)
class ClusterSettings:
    min_cluster_size: int | None = _help(
        None, "smallest fine topic (None: max(10, sqrt(N)/4))", least=2
    )
    coarse_range: tuple[int, int] = _help((6, 30), "allowed number of coarse (level 0) topics")
    three_levels_from: int = _help(50_000, "inputs this large get a middle level")
    cluster_sample: int = _help(1_000_000, "larger maps: HDBSCAN runs on a random sample this large and every "
                                       "other record joins the topic of its nearest sample point")


@dataclass(frozen=True)
class KeywordSettings:
    top_n: int = _help(10, "keywords stored per topic")
    label_words: int = _help(3, "keywords joined into the short label")


@dataclass(frozen=True)
class LabelSettings:
    method: str | None = _help(
        None, "llm | keywords (None: llm when a model is installed, else keywords with a notice)",
        choices=("llm", "keywords"),
    )
    model: str | None = _help(
        None, "a model name from `atlas models` or PATH to a .gguf file (None: qwen-0.5b if installed, else smollm2; "
        "smollm2 names the finest level of a map qwen would take over 5 minutes to name)"
    )
    threads: int = _help(1, "llama.cpp threads per context: 2 is faster on a quiet 2-core machine, "
                              "but calls stall (60x slower) when anything else wants a core", least=1)
    contexts: int = _help(2, "llama.cpp contexts naming topics at once, each in its own thread", least=1)
    samples: int | None = _help(None, "answers asked per finest topic (one greedy, the rest sampled; the best "
                                      "fit wins; parents get 6); None: the model's own, from the catalogue (3 for "
                                      "a .gguf file)")
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
    semantic_latin_only: bool = _help(
        True, "semantic links only between texts mostly in Latin script (the bundled embedders are "
              "English models: they place texts in other scripts close together whatever they say)"
    )
    common_share: float = _help(
        0.01, "template pairs: a word in fewer than this share of texts (or one with a digit) is a "
              "name, and a pair that swaps a name for another is template, not near or semantic"
    )
    num_perm: int = _help(128, "MinHash permutations")
    bands: int = _help(32, "LSH bands (num_perm / bands rows each)")
    shingle: int = _help(5, "characters per shingle")


@dataclass(frozen=True)
class SearchSettings:
    index_from: int = _help(
        100_000, "maps with more records get an ANN index for semantic search; smaller ones are scanned exactly"
    )
    ann_dtype: str = _help("f16", "ANN index: the type its vectors are stored as (both 2 bytes a dimension; "
                                  "bf16 inserts faster where the CPU has bfloat16 dot products, at lower recall)",
                           choices=("f16", "bf16"))
    connectivity: int = _help(16, "ANN index: links per node of the HNSW graph")
    expansion_add: int = _help(64, "ANN index: candidates kept while inserting (build cost vs quality)")
    expansion_search: int = _help(2048, "ANN index: candidates kept while searching (recall vs time per query)")


@dataclass(frozen=True)
class BuildSettings:
    text_columns: tuple[str, ...]
    id_column: str | None = None
    embeddings_column: str | None = None
    input_format: str | None = _help(None, "input format (None: from the file's extension)",
                                     choices=("parquet", "csv", "tsv", "jsonl"))
    skip_bad_lines: bool = False  # leave out CSV/TSV/JSONL lines that cannot be read, listing them
    seed: int | None = None  # None: parallel UMAP and NN-descent, not reproducible
    cuml: bool | None = _help(None, "UMAP and HDBSCAN on RAPIDS cuML (None: when cuml imports and there is a GPU)")
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


# The names `atlas build`'s options go by (--labels -> label.method), beside the field names.
OPTION_NAMES = {"id": "id_column", "format": "input_format", "embeddings": "embeddings_column",
                "labels": "method", "llm": "model", "llm_threads": "threads",
                "llm_contexts": "contexts"}


def build_settings(text_columns: str | typing.Sequence[str], **options) -> BuildSettings:
    """BuildSettings from flat options, checked: a field of BuildSettings (`seed`, or a whole
    stage: `label=LabelSettings(...)`), a field of any stage by its name (`embedder`,
    `min_cluster_size`, `near_threshold`) or an `atlas build` option's name (`labels`, `llm`).
    The CLI and `atlas.build` both build their settings here."""
    texts = (text_columns,) if isinstance(text_columns, str) else tuple(text_columns)
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise AtlasError(f"text is a column name or a list of them, not {text_columns!r}")
    top, stages = {"text_columns": texts}, {}
    places = _places()
    for name, value in options.items():
        if name not in places:
            raise AtlasError(f"unknown setting {name!r}; allowed: {', '.join(sorted(places))}")
        stage, cls, key = places[name]
        _check(cls, key, value, name)
        values = stages.setdefault(stage, {}) if stage else top
        if key in values:
            raise AtlasError(f"{name} sets {key}, which another option already set; give one of them")
        values[key] = value
    settings = BuildSettings(**top)
    return replace(settings, **{stage: replace(getattr(settings, stage), **values)
                                for stage, values in stages.items()})


def choices(cls: type, name: str) -> tuple[str, ...]:
    """The values a settings field allows (its metadata), for the CLI's choices."""
    return next(f.metadata["choices"] for f in fields(cls) if f.name == name)


def least(cls: type, name: str) -> int:
    """The smallest value a settings field allows (its metadata), for the CLI's ranges."""
    return next(f.metadata["least"] for f in fields(cls) if f.name == name)


def _places() -> dict[str, tuple[str | None, type, str]]:
    """Option name -> (stage or None for the top level, dataclass, field name)."""
    places: dict[str, tuple[str | None, type, str]] = {}
    for top in fields(BuildSettings):
        stage = top.default_factory if is_dataclass(top.default_factory) else None
        places[top.name] = (None, BuildSettings, top.name)
        for f in fields(stage) if stage else ():
            if f.name in places:  # a new field must not shadow another: give it its own name
                raise TypeError(f"settings field {f.name!r} is not unique")
            places[f.name] = (top.name, stage, f.name)
    del places["text_columns"]  # passed on its own
    places.update({alias: places[name] for alias, name in OPTION_NAMES.items()})
    return places


def _check(cls: type, key: str, value, name: str) -> None:
    """AtlasError unless `value` fits the field's type and choices."""
    spec = next(f for f in fields(cls) if f.name == key)
    allowed = spec.metadata.get("choices")
    if allowed and value is not None and value not in allowed:
        raise AtlasError(f"{name} is one of {', '.join(allowed)}, not {value!r}")
    hint = typing.get_type_hints(cls)[key]
    if not _fits(value, hint):
        raise AtlasError(f"{name} takes {_type_name(hint)}, not {value!r}")
    low = spec.metadata.get("least")
    if low is not None and value is not None and value < low:
        raise AtlasError(f"{name} is at least {low}, not {value!r}")


def _fits(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, tuple)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


def cache_dir() -> Path:
    """Where built models (the distilled static embedder) are kept between builds."""
    root = os.environ.get("ATLAS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "atlas"
    )
    return Path(root)
