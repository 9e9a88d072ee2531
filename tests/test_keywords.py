import numpy as np
import pyarrow as pa

from atlas.pipeline.cluster import Hierarchy
from atlas.pipeline.keywords import short_label, topic_keywords
from atlas.settings import KeywordSettings


def test_short_label_prefers_phrases_and_skips_repeats():
    assert short_label(["window", "window manager", "x11", "managers", "desktop"], 3) == \
        "window manager, x11, desktop"
    assert short_label([], 3) == "(no text)"


def test_topic_keywords_on_real_texts(small_table):
    texts = small_table.column("description")
    sections = small_table.column("section").to_pylist()
    names = sorted(set(sections))
    fine = np.array([names.index(s) for s in sections], np.int32)
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
