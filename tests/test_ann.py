"""The ANN index for semantic search: built above SearchSettings.index_from records, used by
semantic search when present; maps without one scan exactly or probe topics."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import SMALL_SETTINGS

from atlas import query
from atlas.pipeline.ann import build_index
from atlas.pipeline.run import build
from atlas.query import MapData
from atlas.settings import SearchSettings

QUERIES = ["perl module for xml parsing", "fonts", "library for image compression", "python 3 web framework"]


@pytest.fixture(scope="module")
def indexed_map(tmp_path_factory, small_table):
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("ann")
    pq.write_table(small_table, d / "packages.parquet")
    settings = replace(SMALL_SETTINGS, search=SearchSettings(index_from=0))
    return build(d / "packages.parquet", d / "map", settings, quiet=True, log=lambda _: None)


def test_index_only_above_the_limit(indexed_map, small_map):
    assert indexed_map.ann_path.is_file() and "ann" in indexed_map.manifest()["stages"]
    assert not small_map.ann_path.exists() and "ann" not in small_map.manifest()["stages"]
    assert MapData(small_map).ann is None


def test_search_through_the_index_finds_the_exact_top_10(indexed_map):
    data = MapData(indexed_map)
    assert data.ann is not None and data.ann.size == 400 and data.ann.expansion_search == 2048
    for text in QUERIES:
        exact, exact_scores = data.semantic_positions(text, 10, probe=0)
        found, scores = data.semantic_positions(text, 10)
        assert found.tolist() == exact.tolist()
        assert np.allclose(scores, exact_scores)


def test_a_seed_builds_the_same_index_from_float16_or_float32(small_map, tmp_path):
    vectors = np.asarray(small_map.embeddings())
    keys = np.arange(len(vectors))[::-1]
    for name, given in (("a", vectors), ("b", vectors), ("c", vectors.astype(np.float32))):
        build_index(given, keys, settings=SearchSettings(), seed=0).save(str(tmp_path / name))
    assert vectors.dtype == np.float16
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == (tmp_path / "c").read_bytes()


def test_a_large_map_without_an_index_probes_topics(small_map, monkeypatch):
    # As if the 400 records were a large map built before the index, probing one topic.
    monkeypatch.setattr(query, "EXACT_SEARCH_LIMIT", 100)
    monkeypatch.setattr(query, "PROBE_TOPICS", 1)
    data = MapData(small_map)
    found = [data.semantic_positions(text, 10)[0].tolist() for text in QUERIES]
    assert found == [data.semantic_positions(text, 10, probe=1)[0].tolist() for text in QUERIES]
    assert found != [data.semantic_positions(text, 10, probe=0)[0].tolist() for text in QUERIES]


def test_the_index_stores_float16_unless_told_bfloat16(small_map):
    from usearch.index import ScalarKind

    vectors = np.asarray(small_map.embeddings())
    keys = np.arange(len(vectors))
    bf16 = build_index(vectors, keys, settings=SearchSettings(ann_dtype="bf16"), seed=0)
    f16 = build_index(vectors, keys, settings=SearchSettings(), seed=0)
    assert (bf16.dtype, f16.dtype) == (ScalarKind.BF16, ScalarKind.F16)
    scores = vectors[:50].astype(np.float32) @ vectors.T.astype(np.float32)
    tenth = -np.partition(-scores, 9, axis=1)[:, 9:10]
    hits = [(np.take_along_axis(scores, index.search(vectors[:50], 10).keys.astype(np.int64), 1) >= tenth - 1e-6)
            for index in (bf16, f16)]
    # recall@10 of the records' own vectors (ties are hits): bfloat16's coarser scores miss 3 of
    # 500 where the 10th best is a near tie
    assert (hits[0].mean(), hits[1].mean()) == (0.994, 1.0)
