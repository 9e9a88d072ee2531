import numpy as np
import pyarrow as pa

from atlas.pipeline.dedup import (
    KINDS,
    char_hashes,
    exact_pairs,
    group_pairs,
    minhash,
    near_pairs,
    normalize,
    semantic_pairs,
    text_hashes,
    word_hashes,
)
from atlas.pipeline.neighbors import Neighbors
from atlas.settings import DedupSettings


def texts(*values):
    return pa.chunked_array([pa.array(values)])


def test_normalize():
    out = normalize(texts("  Ｈｅｌｌｏ,   World!! ", "hello world", "Ça va?\tOui."))
    assert out.to_pylist() == ["hello world", "hello world", "ça va oui"]


def test_exact_pairs_skip_empty():
    norm = normalize(texts("A b", "a B!", "x", "", "", "a   b"))
    empty = np.array([False, False, False, True, True, False])
    pairs = exact_pairs(text_hashes(norm), empty)
    assert sorted(map(tuple, pairs.T.tolist())) == [(0, 1), (0, 5)]


def test_text_hashes_equal_only_for_equal_texts():
    values = ["ab", "ba", "ab", "", "a", "abc", "ab ", "ç", "", "ba"]
    hashes = text_hashes(pa.array(values).slice(0))
    assert [values.index(v) for v in values] == [hashes.tolist().index(h) for h in hashes.tolist()]
    assert text_hashes(pa.array(values).slice(5, 3)).tolist() == hashes[5:8].tolist()  # a slice: same hashes


def test_minhash_estimates_jaccard():
    a = "the quick brown fox jumps over the lazy dog near the river bank today"
    norm = normalize(texts(a, a + " again", "completely unrelated words here"))
    sig = minhash(norm, char_hashes, 5, 256, 0)
    assert (sig[0] == sig[1]).mean() > 0.75 and (sig[0] == sig[2]).mean() < 0.1
    words = minhash(norm, word_hashes, None, 256, 0)  # 12 of 13 distinct words shared
    assert abs((words[0] == words[1]).mean() - 12 / 13) < 0.1 and (words[0] == words[2]).mean() < 0.1


def test_near_pairs_find_planted_variants(small_table):
    originals = small_table.column("description").to_pylist()[:200] + [
        "Utilities for the Data Manager API", "Python bindings for the SUNDIALS solvers"]
    words = originals[3].split(" ")
    variants = [
        originals[3].upper(),
        originals[3].replace(",", " ,").replace(".", ""),
        " ".join(words[:5] + words[6:]),
        originals[3] + " extra",
    ]
    variants += ["for the Data Manager API", "Python bindings for the libhmac solvers"]
    values = originals + variants
    norm = normalize(texts(*values))
    pairs, similarity = near_pairs(norm, np.zeros(len(values), bool), DedupSettings(), seed=0)
    assert (similarity >= DedupSettings().near_threshold).all() and (similarity <= 1).all()
    none = np.zeros((2, 0), np.int64)
    group = group_pairs([none, pairs, none], np.ones(len(values))).group
    assert group[3] >= 0 and (group[202:206] == group[3]).all()
    assert group[200] >= 0 and group[206] == group[200]  # a word dropped from a short text
    assert group[201] < 0 or group[207] != group[201]  # one name swapped in a template: kept apart
    assert (group == group[3]).sum() <= 8  # its package family and the variants, no more


def test_semantic_pairs_threshold():
    nb = Neighbors(np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]], np.int32),
                   np.array([[0, 0.02, 0.5], [0, 0.02, 0.3], [0, 0.3, 0.5]], np.float32))
    pairs, similarity = semantic_pairs(nb, np.zeros(3, bool), 0.95)
    assert sorted(map(tuple, pairs.T.tolist())) == [(0, 1), (1, 0)]
    assert np.allclose(similarity, 0.98)


def test_group_pairs_kind_and_survivor():
    lengths = np.array([10, 30, 30, 5, 7, 8])
    exact = np.array([[0], [1]])
    near = np.array([[1], [2]])
    semantic = np.array([[3], [4]])
    dups = group_pairs([exact, near, semantic], lengths)
    assert dups.group.tolist() == [0, 0, 0, 1, 1, -1]
    assert [KINDS[k] for k in dups.kind] == ["exact", "exact", "near", "semantic", "semantic", None]
    # longest text survives; the first row breaks the tie between rows 1 and 2
    assert dups.survivor.tolist() == [False, True, False, False, True, True]
