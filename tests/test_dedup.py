import numpy as np
import pyarrow as pa
import pytest

from atlas.pipeline import minhash as hashing
from atlas.pipeline.dedup import (
    KINDS,
    block_features,
    components,
    embedder_reads,
    exact_pairs,
    find_duplicates,
    near_pairs,
    ranks,
    replacements,
    semantic_pairs,
)
from atlas.pipeline.minhash import char_hashes, minhash, normalize, text_hashes, word_hashes
from atlas.pipeline.neighbors import Neighbors
from atlas.pipeline.templates import Words, classify, edge_lines
from atlas.settings import DedupSettings

NONE = np.zeros((2, 0), np.int64)


def texts(*values):
    return pa.chunked_array([pa.array(values)])


def neighbours(n: int, similar: dict[tuple[int, int], float]) -> Neighbors:
    """Each record's neighbours: itself, then the given pairs (both ways), padded with -1."""
    rows = [[(i, 1.0)] for i in range(n)]
    for (a, b), cosine in similar.items():
        rows[a].append((b, cosine))
        rows[b].append((a, cosine))
    k = max(map(len, rows))
    indices = np.full((n, k), -1, np.int32)
    distances = np.ones((n, k), np.float32)
    for i, row in enumerate(rows):
        indices[i, :len(row)] = [j for j, _ in row]
        distances[i, :len(row)] = [1 - c for _, c in row]
    return Neighbors(indices, distances)


def dedup(values, similar=None, **settings):
    return find_duplicates(texts(*values), np.array([not v.strip() for v in values]),
                           neighbours(len(values), similar or {}), settings=DedupSettings(**settings))


def test_normalize():
    out = normalize(texts("  Ｈｅｌｌｏ,   World!! ", "hello world", "Ça va?\tOui.", "GNU C++ (and C#) compiler",
                          "M2(LIS)+M3"))
    assert out.to_pylist() == ["hello world", "hello world", "ça va oui", "gnu c++ and c# compiler", "m2lism3"]


def test_exact_pairs_skip_empty():
    norm = normalize(texts("A b", "a B!", "x", "", "", "a   b"))
    empty = np.array([False, False, False, True, True, False])
    pairs, firsts = exact_pairs(text_hashes(norm), empty)
    assert sorted(map(tuple, pairs.T.tolist())) == [(0, 1), (0, 5)] and firsts.tolist() == [0, 2]


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
    originals = small_table.column("description").to_pylist()[:200] + ["Utilities for the Data Manager API"]
    words = originals[3].split(" ")
    variants = [
        originals[3].upper(),
        originals[3].replace(",", " ,").replace(".", ""),
        " ".join(words[:5] + words[6:]),
        originals[3] + " extra",
        "for the Data Manager API",
        "Convert HTML to Markdown.",  # 206: the same words as 207, the other way round
        "Convert markdown to html",
    ]
    values = originals + variants
    norm = normalize(texts(*values))
    pairs, similarity = near_pairs(norm, DedupSettings(), seed=0)
    assert (similarity >= DedupSettings().near_threshold).all() and (similarity <= 1).all()
    group = components([NONE, pairs, NONE, NONE], len(values))[0]
    assert group[3] >= 0 and (group[201:205] == group[3]).all()
    assert group[200] >= 0 and group[205] == group[200]  # a word dropped from a short text
    assert group[206] < 0 and group[207] < 0  # same words, not the same text
    assert (group == group[3]).sum() <= 8  # its package family and the variants, no more


def test_semantic_pairs_threshold():
    nb = Neighbors(np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]], np.int32),
                   np.array([[0, 0.02, 0.5], [0, 0.02, 0.3], [0, 0.3, 0.5]], np.float32))
    pairs, similarity = semantic_pairs(nb, np.zeros(3, bool), 0.95)
    assert sorted(map(tuple, pairs.T.tolist())) == [(0, 1), (1, 0)]
    assert np.allclose(similarity, 0.98)


CORPUS = [
    "Python bindings for libgfxd",  # 0
    "Python bindings for SUNDIALS",  # 1: a name swapped for another
    "The official Python library for the relace API",  # 2
    "The official Python library for the hubspot API",  # 3: a name swapped
    "Python client for the Slack API",  # 4
    "Python wrapper for the Slack API",  # 5: a common word swapped for another
    "A client and a wrapper",  # 6: makes "client" and "wrapper" common here
    "Python bindings for libgfxd, fast",  # 7: a word added to 0
    "Tools for the colour of things",  # 8
    "Tools for the color of things",  # 9: a spelling
    "Type annotations for boto3 EMR 1.43.50",  # 10
    "Type annotations for boto3 EMR 1.43.51",  # 11: a number
    "Foo library - development files\nFoo is a library for reading and writing foo files.",  # 12
    "Foo library - documentation\nFoo is a library for reading and writing foo files.",  # 13: first lines differ
    "Foo library - documentation\nFoo is a library for reading and writing foo files!",  # 14: a copy of 13
    "Foo library\nFoo is a library for reading and writing foo files.\nThis package contains the Java wrapper.",
    "Foo library\nFoo is a library for reading and writing foo files.\nThis package contains the run-time library.",
    "A library for C with a common API",  # 17
    "A library for C++ with a common API",  # 18: another language, though "c" and "c++" are common here
    "A C and C++ API",  # 19
]


def test_template_pairs_differ_where_each_names_its_own_thing():
    values = texts(*CORPUS)
    pairs = np.array([[0, 2, 4, 0, 8, 10, 12, 13, 15, 17], [1, 3, 5, 7, 9, 11, 13, 14, 16, 18]])
    template, jaccard = classify(pairs, Words.of(values, np.arange(len(values))), edge_lines(values), common_share=0.01)
    assert template.tolist() == [True, True, False, False, False, True, True, False, True, True]
    assert np.allclose(jaccard, [3 / 5, 6 / 8, 5 / 7, 4 / 5, 5 / 7, 5 / 7, 9 / 11, 1, 13 / 16, 6 / 8])


def test_edge_lines_of_texts_with_several_lines():
    lines = edge_lines(texts("One\nbody", "one!\nmiddle\nBody.", "One", "Two\n\n  tail", "Two\n  ")).tolist()
    assert lines[0] == lines[1] and lines[2] == lines[4] == [0, 0]
    assert len({lines[0][0], lines[0][1], lines[3][0], lines[3][1]}) == 4 and 0 not in lines[3]


def test_find_duplicates_kinds_and_no_chains():
    values = [
        "Pydantic v2 models for AWS codeguru_reviewer, shipped as a PEP 420 namespace extension of aws-validator.",
        "Pydantic v2 models for AWS snow_device_management, shipped as a PEP 420 namespace extension of aws-validator.",
        "A parser of JSON",  # 2
        "A parser of JSON for Python",  # 3: ~ 2 and ~ 4 (semantic, given below), 2 and 4 not
        "A parser of JSON for Python with speed and comfort",  # 4
        "UNKNOWN", "unknown!", "Unknown",  # 5-7: exact copies
        "",  # 8
    ]
    dups = dedup(values, {(2, 3): 0.97, (3, 4): 0.97, (2, 4): 0.9})
    assert [KINDS[k] for k in dups.kind] == ["template", "template", "semantic", "semantic", "semantic",
                                            "exact", "exact", "exact", None]
    assert dups.group.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, -1]
    # 4 (the longest) is kept and takes 3; 2 is not within the threshold of 4, so it stays
    assert dups.survivor.tolist() == [True, True, True, False, True, False, True, False, True]


def test_semantic_links_only_between_texts_the_embedder_reads():
    values = ["数据处理工具包", "数据处理工具包 网络请求库", "Data tools", "Data tools and helpers for science",
              "Ünïcödé façade"]
    assert embedder_reads(texts(*values)).tolist() == [False, False, True, True, True]
    similar = {(0, 1): 0.99, (2, 3): 0.99}
    assert dedup(values, similar).kind.tolist() == [0, 0, 3, 3, 0]
    assert dedup(values, similar, semantic_latin_only=False).kind.tolist() == [3, 3, 3, 3, 0]


def test_replacements_never_chain():
    near = np.array([[0, 1], [1, 2]])  # 0 ~ 1 ~ 2, and 0 is not near 2
    by_rank = replacements([NONE, near, NONE, NONE], np.array([0, 1, 2]), ["near"])
    assert by_rank[0].tolist() == [0, 0, 2] and by_rank[1].tolist() == [0, 2, 0]
    middle_first = replacements([NONE, near, NONE, NONE], np.array([1, 0, 2]), ["near"])
    assert middle_first[0].tolist() == [1, 1, 1]
    assert replacements([NONE, NONE, NONE, near], np.array([0, 1, 2]), ["near"])[0].tolist() == [0, 1, 2]


def test_replacements_keep_exact_copies_together():
    exact = np.array([[0, 0], [1, 2]])  # 0 = 1 = 2 (stored as a star on 0)
    near = np.array([[2], [3]])  # a copy of 0 is near 3
    rank = np.array([3, 1, 2, 0])  # 3 first, then 1
    replaced, link = replacements([exact, near, NONE, NONE], rank, ["exact", "near"])
    assert replaced.tolist() == [3, 3, 3, 3] and [KINDS[k] for k in link] == ["near"] * 3 + [None]
    rank = np.array([3, 2, 0, 1])  # 2 first: it keeps its copies out and takes 3
    replaced, link = replacements([exact, near, NONE, NONE], rank, ["exact", "near"])
    assert replaced.tolist() == [2, 2, 2, 2] and [KINDS[k] for k in link] == ["exact", "exact", None, "near"]
    assert replacements([exact, near, NONE, NONE], rank, ["near"])[0].tolist() == [0, 1, 2, 2]


@pytest.mark.parametrize("keys, kept", [
    ((-np.array([10, 30, 30, 5]),), [False, True, False, True]),  # longest, then the first row
    ((np.array([10, 30, 30, 5]),), [True, False, True, True]),  # shortest: 3 alone, 0 before 1
    ((np.array([1, 1, 0, 1]), -np.array([10, 30, 30, 5])), [True, False, True, True]),  # 2 preferred
])
def test_survivor_order_decides_who_is_kept_first(keys, kept):
    near = np.array([[0, 1], [1, 2]])
    replaced, _ = replacements([NONE, near, NONE, NONE], ranks(*keys), ["near"])
    assert (replaced == np.arange(4)).tolist() == kept


def test_dedup_block_by_block_equals_one_block(sample_table, monkeypatch):
    """2,000 real descriptions and 30 of them with a word dropped, hashed in runs of 4 kB (some
    300 runs) and in one: the same signatures and features, the same pairs of every kind, and
    the words of only the paired texts classify the pairs as the words of all texts do."""
    def dropped(text):
        lines = text.split("\n")
        words = lines[1].split(" ")
        return "\n".join([lines[0], " ".join(words[:1] + words[2:]), *lines[2:]])

    originals = sample_table.column("description").to_pylist()[:2000]
    values = texts(*originals, *[dropped(t) for t in originals if t.count("\n") >= 2][:30])
    n = len(values)
    settings, alone = DedupSettings(), neighbours(len(values), {})

    def run():
        return (block_features(pa.table({"text": values}), settings=settings, seed=0),
                find_duplicates(values, np.zeros(n, bool), alone, settings=settings))

    one_features, one = run()
    monkeypatch.setattr(hashing, "BLOCK_BYTES", 4096)
    features, found = run()
    assert len(hashing.byte_blocks(hashing.text_buffers(values.combine_chunks())[1])) > 200
    assert one_features.keys() == features.keys()
    assert all(np.array_equal(one_features[key], features[key]) for key in features)
    assert np.bincount(found.pairs.kind, minlength=len(KINDS)).tolist() == [0, 3, 30, 0, 3595]
    for name in ("group", "kind", "survivor"):
        assert np.array_equal(getattr(one, name), getattr(found, name))
    assert np.array_equal(one.pairs.edges, found.pairs.edges) and np.array_equal(one.pairs.kind, found.pairs.kind)
    pairs = found.pairs.edges[:, found.pairs.kind == KINDS.index("template")]
    lines = edge_lines(values)
    by_all = classify(pairs, Words.of(values, np.arange(n)), lines, settings.common_share)
    by_paired = classify(pairs, Words.of(values, np.unique(pairs)), lines, settings.common_share)
    assert all(np.array_equal(a, b) for a, b in zip(by_all, by_paired)) and by_all[0].all()
