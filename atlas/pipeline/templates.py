"""Template siblings: pairs of texts that share a template but differ in what they name.

"Python bindings for libgfxd" and "... for SUNDIALS", or two Debian descriptions that share
their paragraphs under different first lines ("... - development files" / "... -
documentation") or end in a different last line ("This package contains the Java wrapper." /
"... the run-time shared library."), pass a similarity threshold without being copies of each
other. A pair is a template pair when

- both texts have several lines and their first or last lines differ (a distinctive line
  differs while the shared paragraphs make them similar), or
- each text has words the other lacks (a swap, not a word added or dropped) and one of those
  words is name-like: it holds a digit, "+" or "#" (v2, C++), or is rare (in fewer than
  `common_share` of the texts).
  A swap of a word for a spelling of itself ("colour"/"color", "nester"/"nestes") is an edit,
  not a name.

Words are those of the normalised text (atlas.pipeline.minhash.normalize), compared as sets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.pipeline.minhash import (
    byte_blocks,
    normalize,
    span_hashes,
    text_buffers,
    text_hashes,
    text_runs,
    word_spans,
)

SPELLING_MIN = 5  # shorter words are never spellings of each other ("gtk" / "gdk")
_MARK = np.zeros(256, bool)  # bytes that make a word a name: digits, "+" and "#" (v2, C++, C#)
_MARK[[*range(ord("0"), ord("9") + 1), ord("+"), ord("#")]] = True


@dataclass
class Words:
    """The distinct words of some texts as ids into their vocabulary, and what each word is like."""

    start: np.ndarray  # int64 (N+1,): text i's word ids are ids[start[i]:start[i+1]], sorted
    ids: np.ndarray  # int64: word ids
    count: np.ndarray  # int64 (V,): texts holding each word, of all N
    marked: np.ndarray  # bool (V,): the word holds a digit, "+" or "#"
    span: np.ndarray  # int64 (V, 2): byte start and length of one occurrence in `data`
    data: np.ndarray  # uint8: the normalised bytes of the texts that have words here

    @classmethod
    def of(cls, texts: pa.ChunkedArray, rows: np.ndarray) -> Words:
        """The words of the texts at `rows` (sorted positions; the other texts have none here),
        counted over all texts, which are normalised and read a text_runs run at a time: memory
        follows the picked texts and their vocabulary, not every word of every text."""
        data, offsets = text_buffers(normalize(texts.take(pa.array(rows))))
        doc, hashes, begin, length = (np.concatenate(column) for column in zip(*_distinct_words(data, offsets),
                                                                               _NO_WORDS))
        vocab, first_seen, ids = np.unique(hashes, return_index=True, return_inverse=True)
        span = np.stack([begin[first_seen], length[first_seen]], axis=1)
        marks = np.r_[0, np.cumsum(_MARK[data])]  # marks before each byte
        marked = marks[span[:, 0] + span[:, 1]] > marks[span[:, 0]]
        return cls(np.searchsorted(rows[doc], np.arange(len(texts) + 1)), ids.reshape(-1),
                   _texts_with(texts, vocab), marked, span, data)


def _texts_with(texts: pa.ChunkedArray, vocab: np.ndarray) -> np.ndarray:
    """int64 (V,): how many of the texts hold each word of `vocab` (sorted word hashes)."""
    count = np.zeros(len(vocab), np.int64)
    runs = text_runs(texts) if len(vocab) else []
    for start, stop in runs:
        for _, found, _, _ in _distinct_words(*text_buffers(normalize(texts.slice(start, stop - start)))):
            at = np.minimum(np.searchsorted(vocab, found), len(vocab) - 1)
            count += np.bincount(at[vocab[at] == found], minlength=len(vocab))
    return count


_NO_WORDS = (np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64))


def _distinct_words(data: np.ndarray, offsets: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Per byte_blocks run of the texts between `offsets`: (text, hash, byte start, length) of
    each word once per text (its first occurrence), sorted by text, then hash."""
    for first, stop in byte_blocks(offsets):
        doc, begin, length = word_spans(data, offsets[first:stop + 1])
        hashes = span_hashes(data, begin, length)
        order = np.lexsort((hashes, doc))
        doc, hashes, begin, length = doc[order], hashes[order], begin[order], length[order]
        new = np.r_[True, (doc[1:] != doc[:-1]) | (hashes[1:] != hashes[:-1])][:len(doc)]
        yield doc[new] + first, hashes[new], begin[new], length[new]


def edge_lines(texts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """uint64 (N, 2): a hash of the normalised first line and of the last line of texts with
    more than one line (equal hashes, equal lines); 0 for single-line texts. Every value
    depends on its own text alone."""
    trimmed = pc.utf8_trim_whitespace(texts)
    several = pc.match_substring_regex(trimmed, r"\n\s*\S").to_numpy(zero_copy_only=False)
    hashes = np.zeros((len(several), 2), np.uint64)
    if several.any():
        subset = trimmed.filter(pa.array(several))
        for side, pattern in enumerate((r"(?s)\n.*", r"(?s).*\n")):
            hashes[several, side] = text_hashes(normalize(pc.replace_substring_regex(subset, pattern, ""))) | 1
    return hashes


def classify(pairs: np.ndarray, words: Words, lines: np.ndarray, common_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(template, jaccard) per pair of a (2, P) array: whether it is a template pair, and the
    Jaccard similarity of the two word sets. `lines` are the texts' `edge_lines`."""
    a, b = pairs
    n_texts = len(words.start) - 1
    common = max(2.0, common_share * n_texts)
    size_a, size_b = np.diff(words.start)[a], np.diff(words.start)[b]
    side = np.r_[np.zeros(size_a.sum(), np.int8), np.ones(size_b.sum(), np.int8)]
    pair = np.r_[np.repeat(np.arange(len(a)), size_a), np.repeat(np.arange(len(a)), size_b)]
    token = np.r_[words.ids[_ranges(words.start[a], size_a)], words.ids[_ranges(words.start[b], size_b)]]
    order = np.lexsort((token, pair))
    pair, token, side = pair[order], token[order], side[order]
    same = (pair[1:] == pair[:-1]) & (token[1:] == token[:-1])
    only = ~(np.r_[same, False] | np.r_[False, same])  # the word is in one text of the pair
    shared = np.bincount(pair[1:][same], minlength=len(a))
    only_a = np.bincount(pair[only & (side == 0)], minlength=len(a))
    only_b = np.bincount(pair[only & (side == 1)], minlength=len(a))
    name_like = words.marked[token] | (words.count[token] < common)
    names = np.bincount(pair[only & name_like], minlength=len(a)) > 0
    swap = (only_a > 0) & (only_b > 0)
    single = np.flatnonzero(swap & (only_a == 1) & (only_b == 1))
    spelling = np.zeros(len(a), bool)
    if len(single):
        in_single = only & np.isin(pair, single)
        word_a = token[in_single & (side == 0)]
        word_b = token[in_single & (side == 1)]
        spelling[pair[in_single & (side == 0)]] = _spellings(words, word_a, word_b)
    lines_differ = ((lines[a] != 0) & (lines[b] != 0) & (lines[a] != lines[b])).any(axis=1)
    template = lines_differ | (swap & names & ~spelling)
    union = np.maximum(size_a + size_b - shared, 1)
    return template, (shared / union).astype(np.float32)


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenated arange(start, start + size) for each pair of values."""
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    return np.repeat(starts - offsets, sizes) + np.arange(sizes.sum())


def _spellings(words: Words, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bool per word pair: two spellings of one word (no digit, "+" or "#", 5+ letters, one
    differing stretch of at most a quarter of the longer word plus one)."""
    (start_a, len_a), (start_b, len_b) = words.span[a].T, words.span[b].T
    width = int(max(len_a.max(), len_b.max()))
    shorter = np.minimum(len_a, len_b)
    longer = np.maximum(len_a, len_b)
    column = np.arange(width)
    padded = np.r_[words.data, np.zeros(width, np.uint8)]

    def matching(reverse: bool) -> np.ndarray:
        at_a = start_a[:, None] + (len_a[:, None] - 1 - column if reverse else column)
        at_b = start_b[:, None] + (len_b[:, None] - 1 - column if reverse else column)
        differs = (padded[np.maximum(at_a, 0)] != padded[np.maximum(at_b, 0)]) | (column >= shorter[:, None])
        return np.where(differs.any(axis=1), differs.argmax(axis=1), width)

    region = longer - np.minimum(matching(False) + matching(True), shorter)
    return (~words.marked[a] & ~words.marked[b] & (longer >= SPELLING_MIN) & (region <= longer // 4 + 1))
