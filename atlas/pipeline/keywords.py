"""Class-based TF-IDF keywords per topic and a short keyword label (the LLM labels' fallback)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from atlas.pipeline.cluster import Hierarchy
from atlas.records import iter_texts
from atlas.settings import KeywordSettings

TOKEN = r"(?u)\b[^\W\d_][\w+#-]*[\w+#]\b"  # words of 2+ characters that start with a letter
# Chat datasets name their speakers in every record: such words say nothing about a topic.
ROLE_NAMES = frozenset({"user", "assistant", "human", "system", "gpt"})


def topic_keywords(
    texts: pa.ChunkedArray, hierarchy: Hierarchy, *, settings: KeywordSettings
) -> tuple[list[list[str]], list[str]]:
    """Per topic id: its top keywords (c-TF-IDF, unigrams and bigrams) and a short label."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | ROLE_NAMES), ngram_range=(1, 2), token_pattern=TOKEN,
        min_df=2 if len(texts) > 1000 else 1, dtype=np.float32,
    )
    counts = vectorizer.fit_transform(iter_texts(texts)).tocsc()
    vocab = vectorizer.get_feature_names_out()
    n_topics, n = len(hierarchy.parent), len(texts)
    keywords: list[list[str]] = [[] for _ in range(n_topics)]
    for level_labels in hierarchy.labels:
        membership = sp.csr_matrix((np.ones(n, np.float32), (level_labels, np.arange(n))),
                                   shape=(n_topics, n))
        for topic, terms in _top_terms(membership @ counts, settings.top_n):
            keywords[topic] = [str(vocab[t]) for t in terms]
    labels = [short_label(k, settings.label_words) for k in keywords]
    return keywords, _distinct_siblings(labels, keywords, hierarchy.parent)


def _top_terms(class_terms: sp.csr_matrix, top_n: int) -> Iterator[tuple[int, np.ndarray]]:
    """c-TF-IDF as in BERTopic with reduce_frequent_words: sqrt(tf) x log(1 + A / f_t).

    A is the mean number of words per class and f_t the term's frequency over all classes;
    the square root keeps words common to every topic ("package", "library") out of labels.
    """
    class_terms = sp.csr_matrix(class_terms)
    words = np.asarray(class_terms.sum(axis=1)).ravel()
    present = np.flatnonzero(words > 0)
    term_freq = np.asarray(class_terms.sum(axis=0)).ravel()
    idf = np.log1p(words[present].mean() / np.maximum(term_freq, 1))
    for topic in present:
        row = class_terms.getrow(topic)
        scores = np.sqrt(row.data) * idf[row.indices]
        best = np.argsort(-scores, kind="stable")[: top_n]
        yield int(topic), row.indices[best]


def short_label(keywords: list[str], n_words: int) -> str:
    """Join the top keywords, skipping any whose words an earlier, longer one already holds."""
    chosen: list[str] = []
    for keyword in keywords:
        words = _stems(keyword)
        if any(words <= _stems(c) for c in chosen):
            continue
        chosen = [c for c in chosen if not _stems(c) <= words] + [keyword]
        if len(chosen) == n_words:
            break
    return ", ".join(chosen) if chosen else "(no text)"


def _stems(phrase: str) -> set[str]:
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in phrase.lower().split()}


def _distinct_siblings(labels: list[str], keywords: list[list[str]], parent: np.ndarray) -> list[str]:
    """Extend a label that a sibling already uses with its next keyword."""
    seen: set[tuple[int, str]] = set()
    for topic, label in enumerate(labels):
        key = (int(parent[topic]), label)
        if key in seen:
            extra = next((k for k in keywords[topic] if k not in label), f"#{topic}")
            labels[topic] = f"{label}, {extra}"
        seen.add((int(parent[topic]), labels[topic]))
    return labels
