import numpy as np
import pytest

from atlas.pipeline.cluster import cluster, label_positions, merge_topics, neighbour_pairs
from atlas.settings import ClusterSettings


def blobs(n_per=150, centres=40, seed=0):
    """Points around `centres` 2D centres, and a random 8-d vector per blob (plus noise)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-50, 50, (centres, 2))
    xy = (np.repeat(c, n_per, axis=0) + rng.normal(0, 0.6, (centres * n_per, 2))).astype(np.float32)
    vectors = np.repeat(rng.normal(size=(centres, 8)), n_per, axis=0) + rng.normal(0, 0.1, (centres * n_per, 8))
    return xy, vectors.astype(np.float32)


def test_hierarchy_is_nested_and_covers_every_record():
    h = cluster(*blobs(), settings=ClusterSettings())
    assert h.n_levels == 2
    assert (h.labels >= 0).all()
    coarse, fine = h.labels
    # 53 fine topics: round(1.5 × √53 = 10.9) coarse ones, where √53 alone gave 7
    assert (len(np.unique(fine)), len(np.unique(coarse))) == (53, 11)
    # every fine topic has exactly one parent, and its records all sit in that parent
    for topic in np.unique(fine):
        assert np.unique(coarse[fine == topic]).tolist() == [h.parent[topic]]
    assert (h.parent[np.unique(coarse)] == -1).all()
    assert (h.level[np.unique(fine)] == 1).all()


def test_three_levels_for_large_inputs():
    h = cluster(*blobs(n_per=60, centres=60), settings=ClusterSettings(three_levels_from=1000, min_cluster_size=20))
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
    assert (slow.max() + 1, slow_outlier.sum()) == (16, 160)  # hdbscan: 16 topics, 160 noise points
    assert (fast.max() + 1, fast_outlier.sum()) == (16, 166)  # fast_hdbscan: as many, 6 more noise points
    assert adjusted_rand_score(slow, fast) == pytest.approx(0.9496, abs=1e-4)


def _map_topics(mapdir):
    points = mapdir.points()
    xy = np.stack([points.column(c).to_numpy() for c in ("x", "y")], axis=1)
    return xy, mapdir.embeddings()


def test_coarse_topics_are_connected_regions_of_related_topics(small_map):
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    from atlas.vectors import topic_centres

    xy, vectors = _map_topics(small_map)
    h = cluster(xy, vectors, settings=ClusterSettings())
    coarse, fine = h.labels
    assert np.bincount(coarse)[np.unique(coarse)].tolist() == [128, 113, 81, 49, 16, 13]
    _, fine = np.unique(fine, return_inverse=True)
    group = np.unique(coarse[np.unique(fine, return_index=True)[1]], return_inverse=True)[1]
    sizes = np.bincount(fine)
    centres = np.stack([np.bincount(fine, xy[:, d]) for d in (0, 1)], axis=1) / sizes[:, None]
    pairs = neighbour_pairs(centres)
    graph = csr_matrix((np.ones(len(pairs)), pairs.T), shape=(len(sizes),) * 2)
    for g in range(group.max() + 1):  # each coarse topic: one connected region of neighbouring fine topics
        members = np.flatnonzero(group == g)
        assert connected_components(graph[members][:, members], directed=False)[0] == 1
    means = topic_centres(vectors, fine, len(sizes))

    def spread(groups):  # records' fine-topic means around their coarse topic's mean: Ward's sum of squares
        centre = np.stack([np.average(means[groups == g], axis=0, weights=sizes[groups == g])
                           for g in range(groups.max() + 1)])
        return float(np.sum(sizes * ((means - centre[groups]) ** 2).sum(axis=1)))

    old = fcluster(linkage(centres, method="ward"), 6, criterion="maxclust") - 1  # the Ward tree on 2D centres
    assert (round(spread(group), 1), round(spread(old), 1)) == (31.6, 32.0)  # tighter in meaning


def test_no_group_takes_most_of_the_map(monkeypatch):
    from atlas.pipeline import cluster as clustering

    # ten topics of 10 records in a zigzag; seven mean the same: merged first, they would hold 70%
    centres = np.array([[i, i % 2] for i in range(10)], np.float64)
    means = np.eye(4)[[0] * 7 + [1, 2, 3]]
    sizes = np.full(10, 10)
    assert merge_topics(centres, means, sizes, [4])[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2, 3]  # 60% at most
    monkeypatch.setattr(clustering, "SPREAD", 100)
    assert merge_topics(centres, means, sizes, [4])[0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 2, 3]


def test_neighbour_pairs_are_the_gabriel_graph():
    points = np.array([[0, 0], [4, 0], [0, 1], [4, 1], [2, 0.5]])
    # the long sides pass the centre point within their diameter circle: dropped
    assert neighbour_pairs(points).tolist() == [[0, 2], [0, 4], [1, 3], [1, 4], [2, 4], [3, 4]]
    repeated = neighbour_pairs(np.vstack([points, [[2, 0.5]]]))
    assert [4, 5] in repeated.tolist()
    assert neighbour_pairs(np.array([[0, 0], [1, 1], [2, 2]])).tolist() == [[0, 1], [0, 2], [1, 2]]


def test_a_gap_on_the_map_costs_meaning():
    # A at (0, 0), B one step away, C five steps away; unit mean vectors at these cosines to A's
    centres = np.array([[0, 0], [1, 0], [0, 5]], np.float64)

    def means(cos_b, cos_c):
        return np.array([[1, 0], [cos_b, np.sqrt(1 - cos_b**2)], [cos_c, -np.sqrt(1 - cos_c**2)]])

    sizes = np.full(3, 10)
    assert merge_topics(centres, means(0.97, 0.98), sizes, [2])[0].tolist() == [0, 0, 1]  # the near one
    assert merge_topics(centres, means(0.97, 0.999), sizes, [2])[0].tolist() == [0, 1, 0]  # much closer meaning


def test_above_cluster_sample_hdbscan_runs_on_a_sample_and_the_rest_join_their_nearest_sample_point(small_map):
    from scipy.spatial import cKDTree
    from sklearn.metrics import adjusted_rand_score

    from atlas.pipeline.cluster import fine_topics

    xy, _ = _map_topics(small_map)
    full, full_outlier = fine_topics(xy, 10)
    unsampled = fine_topics(xy, 10, sample=400)  # 400 points: no sample
    assert (unsampled[0].tolist(), unsampled[1].tolist()) == (full.tolist(), full_outlier.tolist())
    labels, outlier = fine_topics(xy, 10, sample=200)
    again, again_outlier = fine_topics(xy, 10, sample=200)
    assert (labels.tolist(), outlier.tolist()) == (again.tolist(), again_outlier.tolist())  # seeded
    rows = np.sort(np.random.default_rng(0).choice(400, 200, replace=False))
    sampled, sampled_outlier = fine_topics(xy[rows], 5)  # min_cluster_size scaled to the sample: 10 * 200/400
    assert labels[rows].tolist() == sampled.tolist() and outlier[rows].tolist() == sampled_outlier.tolist()
    rest = np.setdiff1d(np.arange(400), rows)
    nearest = rows[cKDTree(xy[rows]).query(xy[rest], k=1)[1]]
    assert labels[rest].tolist() == labels[nearest].tolist() and outlier[rest].tolist() == outlier[nearest].tolist()
    assert (full.max() + 1, full_outlier.sum()) == (16, 160)
    assert (labels.min(), labels.max() + 1, outlier.sum()) == (0, 16, 106)  # 16 topics on 200 points
    assert adjusted_rand_score(full, labels) == pytest.approx(0.5935, abs=1e-4)


def test_a_sampled_fine_level_still_nests(small_map):
    h = cluster(*_map_topics(small_map), settings=ClusterSettings(cluster_sample=200, three_levels_from=100))
    assert h.n_levels == 3 and (h.labels >= 0).all()
    for upper, lower in zip(h.labels[:-1], h.labels[1:]):
        assert all(len(np.unique(upper[lower == t])) == 1 for t in np.unique(lower))
    assert [len(np.unique(lv)) for lv in h.labels] == [6, 10, 16]  # every point clustered


def test_a_topic_of_empty_texts_merges_with_none():
    """The zigzag of ten topics, topic 3 of empty texts: it stays a group of its own, beyond
    the groups asked for; the other nine merge as if it were not there (the graph drawn
    without it links 2 and 4; a group holds 5 of the 9 at most)."""
    centres = np.array([[i, i % 2] for i in range(10)], np.float64)
    means = np.eye(4)[[0] * 7 + [1, 2, 3]]
    sizes = np.full(10, 10)
    apart = np.arange(10) == 3
    four, two = merge_topics(centres, means, sizes, [4, 2], apart)
    assert four.tolist() == [0, 0, 0, 1, 0, 0, 2, 2, 3, 4]
    assert two.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 2, 2]


def test_a_fine_topic_mostly_of_empty_texts_is_a_topic_at_every_level():
    """40 blobs, one of them (records 0-149) empty texts: in its own coarse topic, alone; without
    `empty` it shares one."""
    xy, vectors = blobs()
    empty = np.arange(len(xy)) < 150
    for marked, alone in ((empty, True), (None, False)):
        coarse, fine = cluster(xy, vectors, settings=ClusterSettings(), empty=marked).labels
        assert len(np.unique(fine[empty])) == 1
        assert (np.unique(fine[coarse == coarse[0]]).size == 1) is alone
