"""Class-based TF-IDF keywords per topic and a short keyword label (the LLM labels' fallback)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
    counts grow with the data (not a matrix of every text's terms). Under a floor of 2 a
    term met in one text so far waits in Once, not as a string (most terms of a large corpus
    never pass)."""
    analyze = vectorizer.build_analyzer()
    vocabulary: dict[str, int] = {}  # the terms past the floor
    totals = [sp.csr_matrix((n_topics, 0), dtype=np.float32) for _ in labels]
    once = Once.empty(len(labels))
    for start, stop in text_runs(texts):
        run: dict[str, int] = {}
        counts = _text_terms(texts.slice(start, stop - start), analyze, run).tocoo()
        names = np.array(list(run), dtype=object)
        ids = np.fromiter((vocabulary.get(name, -1) for name in names), np.int64, len(names))
        hashes = np.fromiter(map(hash, names), np.int64, len(names))
        earlier = once.find(hashes)
        joins = (ids < 0) & (np.bincount(counts.col, minlength=len(names)) + (earlier >= 0) >= vectorizer.min_df)
        ids[joins] = np.arange(len(vocabulary), len(vocabulary) + joins.sum())
        vocabulary.update(zip(names[joins].tolist(), ids[joins].tolist()))
        came_back = joins & (earlier >= 0)  # waiting in Once: the earlier text's counts join too
        back = earlier[came_back]
        known = ids[counts.col] >= 0
        block = sp.csr_matrix((counts.data[known], (counts.row[known], ids[counts.col[known]])),
                              shape=(stop - start, len(vocabulary)))
        for level, level_labels in enumerate(labels):
            membership = sp.csr_matrix((np.ones(stop - start, np.float32),
                                        (level_labels[start:stop], np.arange(stop - start))),
                                       shape=(n_topics, stop - start))
            earlier_counts = sp.csr_matrix((once.counts[back], (once.topics[level, back], ids[came_back])),
                                           shape=(n_topics, len(vocabulary)))
            totals[level].resize((n_topics, len(vocabulary)))
            totals[level] = totals[level] + membership @ block + earlier_counts
        waits = ~known
        once = once.changed(back, hashes[counts.col[waits]], labels[:, start + counts.row[waits]], counts.data[waits])
    names = np.array(list(vocabulary), dtype=object)
    order = np.argsort(names)
    return names[order], [level_terms[:, order] for level_terms in totals]


@dataclass
class Once:
    """Terms met in one text so far: a 64-bit hash of each (sorted; two terms sharing one, about
    1 in 10^6 among millions, would count as one), that text's topic per level, the count."""

    hashes: np.ndarray  # int64 (M,)
    topics: np.ndarray  # int (levels, M)
    counts: np.ndarray  # float32 (M,)

    @classmethod
    def empty(cls, levels: int) -> Once:
        return cls(np.zeros(0, np.int64), np.zeros((levels, 0), np.int64), np.zeros(0, np.float32))

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """int64: where each hash is here, -1 where absent."""
        if not len(self.hashes):
            return np.full(len(hashes), -1, np.int64)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return np.where(self.hashes[at] == hashes, at, -1)

    def changed(self, gone: np.ndarray, hashes: np.ndarray, topics: np.ndarray, counts: np.ndarray) -> Once:
        """Without the terms at `gone`, with these new ones."""
        keep = np.ones(len(self.hashes), bool)
        keep[gone] = False
        hashes = np.r_[self.hashes[keep], hashes]
        order = np.argsort(hashes, kind="stable")
        return Once(hashes[order], np.concatenate([self.topics[:, keep], topics], axis=1)[:, order],
                    np.r_[self.counts[keep], counts][order])


def _text_terms(texts: pa.ChunkedArray, analyze: Callable[[str], list[str]],
                vocabulary: dict[str, int]) -> sp.csr_matrix:
    """float32 (texts, terms in `vocabulary`): each text's term counts; a new term joins `vocabulary`."""
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
