"""Per-topic mean vectors: the kernel labels, quotas and semantic search share."""

import numpy as np

from atlas.vectors import centre_similarity, topic_centres, topic_sums


def test_topic_centres_are_unit_means_over_blocks_and_weights():
    vectors = np.array([[1, 0], [0, 1], [1, 0], [3, 4]], np.float16)
    topic = np.array([0, 0, 2, 2])
    centres = topic_centres(vectors, topic, 3, block=3)  # a block boundary inside topic 2
    np.testing.assert_array_equal(topic_sums(vectors, topic, 3, block=3), [[1, 1], [0, 0], [4, 4]])
    h = np.sqrt(0.5)
    np.testing.assert_allclose(centres, [[h, h], [0, 0], [4 / np.hypot(4, 4), 4 / np.hypot(4, 4)]], rtol=1e-6)
    weighted = topic_centres(vectors, topic, 3, weights=np.array([True, False, False, True]))
    np.testing.assert_allclose(weighted, [[1, 0], [0, 0], [0.6, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(centre_similarity(vectors, topic, weighted, block=3), [1, 0, 0.6, 5], rtol=1e-3)


def test_every_level_in_one_pass_equals_level_by_level():
    vectors = np.array([[1, 0], [0, 1], [1, 0], [3, 4]], np.float16)
    levels = np.array([[0, 0, 1, 1], [2, 3, 4, 4]])  # coarse topics 0-1, fine 2-4
    centres = topic_centres(vectors, levels, 5, block=3)
    h = np.sqrt(0.5)
    np.testing.assert_allclose(centres, [[h, h], [4 / np.hypot(4, 4)] * 2, [1, 0], [0, 1], [4 / np.hypot(4, 4)] * 2],
                               rtol=1e-6)
    np.testing.assert_array_equal(centres, topic_centres(vectors, levels[0], 5) + topic_centres(vectors, levels[1], 5))
    similarity = centre_similarity(vectors, levels, centres, block=3)
    assert similarity.shape == (2, 4)
    np.testing.assert_allclose(similarity, [[h, h, h, 7 * h], [1, 1, h, 7 * h]], rtol=1e-3)
