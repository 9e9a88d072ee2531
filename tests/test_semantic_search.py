"""Semantic search: an exact scan, or the fine topics as an inverted file (`probe` topics scored)."""

import numpy as np

from atlas.query import MapData


def test_probing_topics(small_map):
    data = MapData(small_map)
    fine = data.levels[-1]
    exact, exact_scores = data.semantic_positions("perl module for xml parsing", 10, probe=0)
    vectors = np.asarray(small_map.embeddings(), np.float32)
    query = data.embedder.encode(["perl module for xml parsing"])[0]
    assert exact.tolist() == np.argsort(-(vectors @ query), kind="stable")[:10].tolist()
    assert np.allclose(exact_scores, vectors[exact] @ query)
    # Probing every fine topic is the exact scan; None below EXACT_SEARCH_LIMIT records is too.
    every = len(np.unique(fine))
    assert data.semantic_positions("perl module for xml parsing", 10, probe=every)[0].tolist() == exact.tolist()
    assert data.semantic_positions("perl module for xml parsing", 10)[0].tolist() == exact.tolist()
    # One probe: only the members of the topic whose mean vector is nearest the query.
    _, _, centres = data._topic_lists
    nearest = int(np.argmax(centres @ query))
    one, scores = data.semantic_positions("perl module for xml parsing", 10, probe=1)
    assert set(fine[one] - fine.min()) == {nearest}
    assert len(one) == min(10, int((fine - fine.min() == nearest).sum()))
    assert list(scores) == sorted(scores, reverse=True)
