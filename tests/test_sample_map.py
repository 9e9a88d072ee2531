"""The bundled sample built as `atlas demo` builds it: structure and quality, not coordinates."""

import collections

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow


def test_topics_nest_and_cover_every_record(sample_map):
    m = sample_map.manifest()
    assert m["embedder"]["name"] == "all-MiniLM-L6-v2 (ONNX)"
    points = sample_map.points()
    topics = sample_map.topics()
    parent = dict(zip(topics["topic_id"].to_pylist(), topics["parent_id"].to_pylist()))
    levels = [c for c in points.column_names if c.startswith("topic_")]
    assert len(levels) == m["levels"] >= 2
    coarse = points.column("topic_0").to_numpy()
    assert 6 <= len(np.unique(coarse)) <= 30
    for upper, lower in zip(levels[:-1], levels[1:]):
        up, low = points.column(upper).to_numpy(), points.column(lower).to_numpy()
        pairs = set(zip(low.tolist(), up.tolist()))
        assert len(pairs) == len(np.unique(low))  # exactly one parent per fine topic
        assert all(parent[child] == p for child, p in pairs)
    sizes = dict(zip(topics["topic_id"].to_pylist(), topics["size"].to_pylist()))
    for level in levels:
        counts = collections.Counter(points.column(level).to_pylist())
        assert all(sizes[t] == c for t, c in counts.items())
    labels = topics["label"].to_pylist()
    assert all(labels) and "(no text)" not in labels


def test_map_preserves_neighbourhoods(sample_map):
    from sklearn.manifold import trustworthiness

    points = sample_map.points(["x", "y"])
    xy = np.stack([points["x"].to_numpy(), points["y"].to_numpy()], axis=1)
    pick = np.random.default_rng(0).choice(len(xy), 2000, replace=False)
    vectors = np.asarray(sample_map.embeddings()[pick], np.float32)
    assert trustworthiness(vectors, xy[pick], n_neighbors=10, metric="cosine") >= 0.8


def test_known_duplicates_are_grouped(sample_map, sample_table):
    texts = sample_table.column("description").to_pylist()
    by_text = collections.defaultdict(list)
    for row, text in enumerate(texts):
        by_text[" ".join(text.lower().split())].append(row)
    known = [rows for rows in by_text.values() if len(rows) > 1]
    assert len(known) > 50
    points = sample_map.points(["row", "dup_group", "dup_survivor"]).sort_by("row")
    group = points.column("dup_group").fill_null(-1).to_numpy()
    for rows in known:
        assert group[rows[0]] >= 0 and (group[rows] == group[rows[0]]).all()
    share = (group >= 0).mean()
    assert share < 0.6  # package families share descriptions; unrelated records are not swept in


def test_each_tile_is_one_run_of_rows(sample_map):
    """True on any layout (the coordinates differ between CPUs): rows are in Morton order."""
    from test_spatial import assert_tiles_are_runs

    meta = pq.ParquetFile(sample_map.points_path).metadata
    assert meta.num_row_groups == 1  # 8,000 rows; larger maps have many, each a compact region
    points = sample_map.points(["x", "y", "morton"])
    assert pc.all(pc.is_finite(points["x"])).as_py() and pc.all(pc.is_finite(points["y"])).as_py()
    assert (np.diff(points["morton"].to_numpy().astype(np.int64)) >= 0).all()
    assert_tiles_are_runs(sample_map, range(1, 11))


def test_every_topic_has_an_llm_label_and_description(sample_map):
    """As `atlas demo` builds it: the bundled model names and describes every topic at every level."""
    from test_label import check_labels

    assert sample_map.manifest()["labels"]["method"] == "llm"
    check_labels(sample_map)
