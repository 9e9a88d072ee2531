"""Class-based TF-IDF keywords per topic and a short keyword label (the LLM labels' fallback)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import reduce

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
    never pass). Each run's topic counts are a part of the totals, merged as Once's parts are, so
    no run re-adds all counts so far."""
    analyze = vectorizer.build_analyzer()
    vocabulary: dict[str, int] = {}  # the terms past the floor
    totals = [[sp.csr_matrix((n_topics, 0), dtype=np.float32)] for _ in labels]  # per level: partial sums
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
        back_topics, back_counts = once.take(back)
        known = ids[counts.col] >= 0
        block = sp.csr_matrix((counts.data[known], (counts.row[known], ids[counts.col[known]])),
                              shape=(stop - start, len(vocabulary)))
        for level, level_labels in enumerate(labels):
            membership = sp.csr_matrix((np.ones(stop - start, np.float32),
                                        (level_labels[start:stop], np.arange(stop - start))),
                                       shape=(n_topics, stop - start))
            earlier_counts = sp.csr_matrix((back_counts, (back_topics[level], ids[came_back])),
                                           shape=(n_topics, len(vocabulary)))
            totals[level].append(membership @ block + earlier_counts)
            _settle(totals[level], lambda part: part.nnz, _sum)
        waits = ~known
        once.change(back, hashes[counts.col[waits]], labels[:, start + counts.row[waits]], counts.data[waits])
    names = np.array(list(vocabulary), dtype=object)
    order = np.argsort(names)
    return names[order], [reduce(_sum, level_totals)[:, order] for level_totals in totals]


def _settle(parts: list, size: Callable, merge: Callable) -> None:
    """Merge the last two parts while the one before is at most twice as large (as in an LSM
    tree: each item is merged about log(all items) times, not once per part added)."""
    while len(parts) > 1 and size(parts[-2]) <= 2 * size(parts[-1]):
        parts[-2:] = [merge(*parts[-2:])]


def _sum(earlier: sp.csr_matrix, later: sp.csr_matrix) -> sp.csr_matrix:
    """Topics' term counts of two runs (the later one knows more terms)."""
    earlier.resize(later.shape)
    return earlier + later


@dataclass
class Once:
    """Terms met in one text so far: a 64-bit hash of each (two terms sharing one, about 1 in
    10^6 among millions, would count as one), that text's topic per level, the count. Kept as
    sorted parts, a part merged into the one before while that one is at most twice its size
    (`_settle`, as in an LSM tree), so adding and finding cost about log(M) per term rather
    than a re-sort of all M every run."""

    parts: list[_Part]
    levels: int

    @classmethod
    def empty(cls, levels: int) -> Once:
        return cls([], levels)

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """int64: where each hash is here (a position for `take`), -1 where absent."""
        found = np.full(len(hashes), -1, np.int64)
        order = np.argsort(hashes)  # sorted queries read each part in order
        hashes = hashes[order]
        offset = 0
        for part in self.parts:
            at = np.minimum(np.searchsorted(part.hashes, hashes), len(part.hashes) - 1)
            hit = (part.hashes[at] == hashes) & part.alive[at]
            found[order[hit]] = offset + at[hit]
            offset += len(part.hashes)
        return found

    def take(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(topics (levels, len(at)), counts) of the terms at these positions."""
        topics = np.zeros((self.levels, len(at)), np.int64)
        counts = np.zeros(len(at), np.float32)
        for part, local, which in self._located(at):
            topics[:, which] = part.topics[:, local]
            counts[which] = part.counts[local]
        return topics, counts

    def change(self, gone: np.ndarray, hashes: np.ndarray, topics: np.ndarray, counts: np.ndarray) -> None:
        """Drop the terms at `gone`, add these new ones."""
        for part, local, _ in self._located(gone):
            part.alive[local] = False
        if len(hashes):
            order = np.argsort(hashes, kind="stable")
            self.parts.append(_Part(hashes[order], topics[:, order], counts[order], np.ones(len(hashes), bool)))
        _settle(self.parts, lambda part: part.alive.sum(), _Part.merged)

    def _located(self, at: np.ndarray) -> Iterator[tuple[_Part, np.ndarray, np.ndarray]]:
        """Per part: it, the positions within it, and which of `at` they are."""
        bounds = np.cumsum([0] + [len(part.hashes) for part in self.parts])
        owner = np.searchsorted(bounds, at, side="right") - 1
        for i, part in enumerate(self.parts):
            which = np.flatnonzero(owner == i)
            yield part, at[which] - bounds[i], which


@dataclass
class _Part:
    """Once's terms added in one go, sorted by hash; `alive` false for those gone since."""

    hashes: np.ndarray  # int64 (m,)
    topics: np.ndarray  # int (levels, m)
    counts: np.ndarray  # float32 (m,)
    alive: np.ndarray  # bool (m,)

    @classmethod
    def merged(cls, first: _Part, second: _Part) -> _Part:
        """The terms alive in both, sorted (the stable sort of two sorted runs is a merge)."""
        hashes = np.r_[first.hashes[first.alive], second.hashes[second.alive]]
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], np.concatenate([first.topics[:, first.alive], second.topics[:, second.alive]],
                                                 axis=1)[:, order],
                   np.r_[first.counts[first.alive], second.counts[second.alive]][order], np.ones(len(hashes), bool))


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
