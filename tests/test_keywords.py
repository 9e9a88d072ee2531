import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from atlas.pipeline import minhash
from atlas.pipeline.cluster import Hierarchy
from atlas.pipeline.keywords import Once, short_label, term_counter, topic_keywords, topic_terms
from atlas.settings import KeywordSettings


def test_short_label_prefers_phrases_and_skips_repeats():
    assert short_label(["window", "window manager", "x11", "managers", "desktop"], 3) == \
        "window manager, x11, desktop"
    assert short_label([], 3) == "(no text)"


def by_section(table: pa.Table) -> tuple[list[str], np.ndarray]:
    """The Debian sections in order, and each record's section as a topic id."""
    sections = table.column("section").to_pylist()
    names = sorted(set(sections))
    return names, np.array([names.index(s) for s in sections], np.int32)


def test_topic_keywords_on_real_texts(small_table):
    texts = small_table.column("description")
    names, fine = by_section(small_table)
    coarse = np.zeros_like(fine) + len(names)
    h = Hierarchy(np.stack([coarse, fine]), np.r_[np.zeros(len(names), np.int32) + len(names), -1],
                  np.r_[np.ones(len(names)), 0].astype(np.int8), np.zeros(len(fine), bool))
    keywords, labels = topic_keywords(texts, h, settings=KeywordSettings())
    perl = names.index("perl")
    assert "perl" in keywords[perl][:3]
    assert len(set(labels[:len(names)])) == len(names)  # siblings never share a label


def test_chat_role_names_are_never_keywords():
    """A chat dataset names its speakers in every record; the words say nothing about a topic."""
    texts = pa.chunked_array([pa.array(
        [f"Human: how do I {verb} a car?\n\nAssistant: You should not {verb} a car. User asked; system said; gpt"
         for verb in ("steal", "hotwire", "break into", "steal")] +
        ["USER: best bread recipe?\nASSISTANT: knead the dough, bake the bread" for _ in range(4)])])
    fine = np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int32)
    h = Hierarchy(np.stack([np.full(8, 2, np.int32), fine]), np.array([2, 2, -1]), np.array([1, 1, 0], np.int8),
                  np.zeros(8, bool))
    keywords, labels = topic_keywords(texts, h, settings=KeywordSettings())
    words = {w for topic in keywords for k in topic for w in k.split()}
    assert not words & {"user", "assistant", "human", "system", "gpt"}
    assert keywords[0][0] == "car" and "bread" in keywords[1][:3]


def test_terms_counted_block_by_block_equal_one_pass(sample_table, monkeypatch):
    """8,000 real descriptions in runs of 20 kB (some 150 runs): the same terms (a term in two
    texts of different runs passes the floor of 2) and the same counts per topic as one
    CountVectorizer over all texts."""
    texts = sample_table.column("description")
    names, fine = by_section(sample_table)
    labels = np.stack([fine // 10 + len(names), fine])
    n_topics = len(names) + len(names) // 10 + 1
    whole = term_counter(len(texts))
    counts = whole.fit_transform(texts.to_pylist())
    monkeypatch.setattr(minhash, "BLOCK_BYTES", 20_000)
    vocab, by_level = topic_terms(texts, labels, n_topics, term_counter(len(texts)))
    assert whole.min_df == 2 and vocab.tolist() == whole.get_feature_names_out().tolist()
    for level_labels, level_terms in zip(labels, by_level):
        membership = sp.csr_matrix((np.ones(len(texts), np.float32), (level_labels, np.arange(len(texts)))),
                                   shape=(n_topics, len(texts)))
        assert level_terms.shape == (n_topics, len(vocab)) and (level_terms != membership @ counts).nnz == 0


def test_once_finds_and_drops_terms_across_its_parts():
    """A small batch after a large one stays a part of its own; a term dropped from either part
    is no longer found; the next batch as large as the parts after the first merges them."""
    once = Once.empty(2)
    once.change(np.zeros(0, np.int64), np.array([50, 10, 90, 30, 70]), np.array([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]),
                np.arange(1, 6, dtype=np.float32))
    once.change(np.zeros(0, np.int64), np.array([20]), np.array([[10], [11]]), np.array([6], np.float32))
    assert [part.hashes.tolist() for part in once.parts] == [[10, 30, 50, 70, 90], [20]]
    at = once.find(np.array([20, 70, 40, 10]))
    assert (at >= 0).tolist() == [True, True, False, True]
    topics, counts = once.take(at[[0, 1, 3]])
    assert topics.tolist() == [[10, 4, 1], [11, 9, 6]] and counts.tolist() == [6, 5, 2]
    once.change(at[[0, 1]], np.array([60, 80]), np.array([[12, 13], [14, 15]]), np.array([7, 8], np.float32))
    assert [part.hashes.tolist() for part in once.parts] == [[10, 30, 50, 60, 80, 90]]
    assert (once.find(np.array([20, 70, 60, 90])) >= 0).tolist() == [False, False, True, True]
