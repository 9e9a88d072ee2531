import numpy as np
import pytest

from atlas.pipeline.cluster import cluster, label_positions
from atlas.settings import ClusterSettings


def blobs(n_per=150, centres=40, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-50, 50, (centres, 2))
    return (np.repeat(c, n_per, axis=0) + rng.normal(0, 0.6, (centres * n_per, 2))).astype(np.float32)


def test_hierarchy_is_nested_and_covers_every_record():
    xy = blobs()
    h = cluster(xy, settings=ClusterSettings())
    assert h.n_levels == 2
    assert (h.labels >= 0).all()
    coarse, fine = h.labels
    assert 6 <= len(np.unique(coarse)) <= 30
    assert len(np.unique(fine)) >= 30
    # every fine topic has exactly one parent, and its records all sit in that parent
    for topic in np.unique(fine):
        assert np.unique(coarse[fine == topic]).tolist() == [h.parent[topic]]
    assert (h.parent[np.unique(coarse)] == -1).all()
    assert (h.level[np.unique(fine)] == 1).all()


def test_three_levels_for_large_inputs():
    xy = blobs(n_per=60, centres=60)
    h = cluster(xy, settings=ClusterSettings(three_levels_from=1000, min_cluster_size=20))
    assert h.n_levels == 3
    counts = [len(np.unique(lv)) for lv in h.labels]
    assert counts[0] < counts[1] < counts[2]
    for upper, lower in zip(h.labels[:-1], h.labels[1:]):
        assert all(len(np.unique(upper[lower == t])) == 1 for t in np.unique(lower))


def test_label_position_is_a_member_near_the_centre():
    xy = np.array([[0, 0], [1, 0], [2, 0], [10, 10], [11, 11]], np.float32)
    labels = np.array([[0, 0, 0, 1, 1]])
    pos = label_positions(xy, labels, 2)
    assert pos[0].tolist() == [1, 0]
    assert pos[1].tolist() in ([10, 10], [11, 11])


def test_fast_hdbscan_above_its_threshold_finds_the_same_topics(small_map, monkeypatch):
    from sklearn.metrics import adjusted_rand_score

    from atlas.pipeline import cluster as clustering

    xy = np.stack([small_map.points().column(c).to_numpy() for c in ("x", "y")], axis=1)
    slow, slow_outlier = clustering.fine_topics(xy, 10)
    monkeypatch.setattr(clustering, "FAST_FROM", 0)
    fast, fast_outlier = clustering.fine_topics(xy, 10)
    assert (slow.max() + 1, slow_outlier.sum()) == (14, 146)  # hdbscan: 14 topics, 146 noise points
    assert (fast.max() + 1, fast_outlier.sum()) == (13, 156)  # fast_hdbscan: one topic fewer
    assert adjusted_rand_score(slow, fast) == pytest.approx(0.9562, abs=1e-4)
