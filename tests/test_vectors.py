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
