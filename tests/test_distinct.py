import numpy as np
import pyarrow as pa
import pytest

from atlas.errors import AtlasError
from atlas.pipeline.distinct import DENSER, Distinct, distinct_texts
from atlas.pipeline.neighbors import Neighbors

TEXTS = pa.chunked_array([["tar archiver", "", "tar archiver"], ["gzip", "", "tar archiver", "Tar archiver"]])


def test_identical_texts_map_to_their_first_row():
    distinct = distinct_texts(TEXTS, least=2)
    assert distinct.first.tolist() == [0, 1, 3, 6]
    assert distinct.inverse.tolist() == [0, 1, 0, 2, 1, 0, 3]
    assert not distinct.all_distinct
    vectors = np.arange(7)[:, None] * np.ones((1, 2))
    assert distinct.rows(vectors)[:, 0].tolist() == [0, 1, 3, 6]
    assert distinct.every(np.array([10, 11, 12, 13])).tolist() == [10, 11, 10, 12, 11, 10, 13]


def test_every_record_takes_its_texts_neighbours_itself_first():
    distinct = distinct_texts(TEXTS, least=2)
    graph = Neighbors(np.array([[0, 3, 1], [1, 2, 0], [2, 0, -1], [3, 0, 2]], np.int32),
                      np.array([[0, .1, .5], [0, .4, .5], [0, .2, .3], [0, .1, .3]], np.float32))
    every = distinct.neighbors(graph)
    # record 5 repeats record 0's text: its neighbours are that text's, each by its first record
    assert every.indices[5].tolist() == [5, 6, 1]
    assert every.indices[4].tolist() == [4, 3, 0]
    assert every.distances[5].tolist() == pytest.approx([0, .1, .5])
    assert every.indices[:, 0].tolist() == list(range(7))
    assert every.indices[3].tolist() == [3, 0, -1]  # NN-descent's "none found" stays none


def test_copies_lie_evenly_in_a_disc_around_their_texts_place_sized_by_their_number():
    many = pa.array(["a"] * 400 + ["b"] * 100 + ["c"])
    distinct = distinct_texts(many, least=2)
    xy = np.array([[0, 0], [10, 0], [5, 10]], np.float32)
    spread = distinct.spread(xy, seed=3)
    assert spread.shape == (501, 2) and spread.dtype == np.float32
    assert spread[500].tolist() == [5, 10]  # a text said once stays at its place
    a, b = np.linalg.norm(spread[:400], axis=1), np.linalg.norm(spread[400:500] - [10, 0], axis=1)
    # radius = extent * sqrt(count / (pi DENSER N)): four times the copies, twice as wide
    radius = 10 * np.sqrt(400 / (np.pi * DENSER * 501))
    assert a.max() == pytest.approx(radius, rel=0.02) and b.max() == pytest.approx(radius / 2, rel=0.05)
    assert np.median(a) == pytest.approx(radius / np.sqrt(2), rel=0.1)  # even over the disc's area
    assert np.array_equal(spread, distinct.spread(xy, seed=3))


def test_a_map_of_one_text_or_of_too_few_is_refused():
    with pytest.raises(AtlasError, match="all 3 texts are the same; a map needs texts that differ"):
        distinct_texts(pa.array(["x", "x", "x"]))
    with pytest.raises(AtlasError, match="only 9 of the 18 texts differ; a map needs at least 10 different texts"):
        distinct_texts(pa.array([str(i % 9) for i in range(18)]))


def test_a_text_listed_after_another_that_embeds_alike_is_moved_first():
    """NN-descent may put "unknown" before "UNKNOWN" in UNKNOWN's row: a copy of UNKNOWN then
    lists the record itself, not its own text's first record, as nearest."""
    distinct = distinct_texts(pa.array(["UNKNOWN", "unknown", "UNKNOWN", *"abcdefgh"]))
    graph = Neighbors(np.array([[1, 0, 2]] + [[u, 0, 2] for u in range(1, 10)], np.int32),
                      np.array([[0, 0, .3]] + [[0, .2, .3]] * 9, np.float32))
    every = distinct.neighbors(graph)
    assert every.indices[2].tolist() == [2, 1, 3]  # itself, "unknown", then "a"
    assert every.indices[0].tolist() == [0, 1, 3]


def test_vectors_from_a_column_keep_every_record_a_point():
    each = Distinct.each(4)
    assert each.all_distinct and each.first.tolist() == [0, 1, 2, 3]


def test_distinct_texts_change_nothing():
    distinct = distinct_texts(pa.array(["a", "b", "c"]), least=2)
    graph = Neighbors(np.zeros((3, 2), np.int32), np.zeros((3, 2), np.float32))
    xy = np.ones((3, 2), np.float32)
    assert distinct.all_distinct and distinct.neighbors(graph) is graph and distinct.spread(xy, 0) is xy
    assert distinct.every(xy) is xy and distinct.rows(xy) is xy
