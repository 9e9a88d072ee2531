"""Class-based TF-IDF keywords per topic and a short keyword label (the LLM labels' fallback)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from atlas.pipeline.cluster import Hierarchy
from atlas.pipeline.minhash import text_runs
from atlas.settings import KeywordSettings

TOKEN = r"(?u)\b[^\W\d_][\w+#-]*[\w+#]\b"  # words of 2+ characters that start with a letter
# Chat datasets name their speakers in every record: such words say nothing about a topic.
ROLE_NAMES = frozenset({"user", "assistant", "human", "system", "gpt"})


def topic_keywords(
    texts: pa.ChunkedArray, hierarchy: Hierarchy, *, settings: KeywordSettings
) -> tuple[list[list[str]], list[str]]:
    """Per topic id: its top keywords (c-TF-IDF, unigrams and bigrams) and a short label."""
    vocab, class_terms = topic_terms(texts, hierarchy.labels, len(hierarchy.parent), term_counter(len(texts)))
    keywords: list[list[str]] = [[] for _ in range(len(hierarchy.parent))]
    for level_terms in class_terms:
        for topic, terms in _top_terms(level_terms, settings.top_n):
            keywords[topic] = [str(vocab[t]) for t in terms]
    labels = [short_label(k, settings.label_words) for k in keywords]
    return keywords, _distinct_siblings(labels, keywords, hierarchy.parent)


def term_counter(n: int):
    """The CountVectorizer whose terms and document-frequency floor the keywords use (n texts)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    return CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | ROLE_NAMES), ngram_range=(1, 2),
                           token_pattern=TOKEN, min_df=2 if n > 1000 else 1, dtype=np.float32)


def topic_terms(texts: pa.ChunkedArray, labels: np.ndarray, n_topics: int,
                vectorizer) -> tuple[np.ndarray, list[sp.csr_matrix]]:
    """The terms (sorted; those in at least `vectorizer.min_df` texts) and, per level, each
    topic's count of each term: `vectorizer.fit_transform` of all texts summed by topic, but
    counted a text_runs run of texts at a time, so only the vocabulary and the topics'
    counts grow with the data (not a matrix of every text's terms)."""
    analyze = vectorizer.build_analyzer()
    vocabulary: dict[str, int] = {}
    totals = [sp.csr_matrix((n_topics, 0), dtype=np.float32) for _ in labels]
    texts_with = np.zeros(0, np.int64)  # document frequency of each term
    for start, stop in text_runs(texts):
        counts = _text_terms(texts.slice(start, stop - start), analyze, vocabulary)
        texts_with = np.pad(texts_with, (0, len(vocabulary) - len(texts_with)))
        texts_with += np.bincount(counts.indices, minlength=len(vocabulary))
        for level, level_labels in enumerate(labels):
            membership = sp.csr_matrix((np.ones(stop - start, np.float32),
                                        (level_labels[start:stop], np.arange(stop - start))),
                                       shape=(n_topics, stop - start))
            totals[level].resize((n_topics, len(vocabulary)))
            totals[level] = totals[level] + membership @ counts
    names = np.array(list(vocabulary), dtype=object)
    kept = np.flatnonzero(texts_with >= vectorizer.min_df)
    kept = kept[np.argsort(names[kept])]
    return names[kept], [level_terms[:, kept] for level_terms in totals]


def _text_terms(texts: pa.ChunkedArray, analyze: Callable[[str], list[str]],
                vocabulary: dict[str, int]) -> sp.csr_matrix:
    """float32 (texts, terms so far): each text's term counts; a new term joins `vocabulary`."""
    ids: list[int] = []
    counts: list[int] = []
    starts = [0]
    for text in texts.to_pylist():
        terms = Counter(vocabulary.setdefault(term, len(vocabulary)) for term in analyze(text))
        ids.extend(terms.keys())
        counts.extend(terms.values())
        starts.append(len(ids))
    return sp.csr_matrix((np.array(counts, np.float32), np.array(ids, np.int64), starts),
                         shape=(len(texts), len(vocabulary)))


def _top_terms(class_terms: sp.csr_matrix, top_n: int) -> Iterator[tuple[int, np.ndarray]]:
    """c-TF-IDF as in BERTopic with reduce_frequent_words: sqrt(tf) x log(1 + A / f_t).

    A is the mean number of words per class and f_t the term's frequency over all classes;
    the square root keeps words common to every topic ("package", "library") out of labels.
    Of terms with equal scores the one first in the vocabulary's order comes first.
    """
    class_terms = sp.csr_matrix(class_terms).sorted_indices()
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
