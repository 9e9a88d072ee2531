"""Text hashing for duplicate detection: normalisation, character and word shingles, MinHash.

Everything works on Arrow's string buffers with numpy; no Python loop runs per text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
SPACE = 32
# Text bytes hashed at once: the shingle and word arrays take tens of bytes per text byte, so
# a batch of long texts (chat conversations) hashed in one go took gigabytes.
BLOCK_BYTES = 1 << 22


def normalize(texts: pa.ChunkedArray | pa.Array) -> pa.StringArray:
    """NFKC, lower case, punctuation removed (but "+" and "#" that end a word: C, C++ and C#
    differ), whitespace collapsed."""
    text = pc.utf8_lower(pc.utf8_normalize(texts, "NFKC"))
    text = pc.replace_substring_regex(text, r"[^\pL\pN\s+#]+|[+#]+([\pL\pN])", r"\1")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s+", " "))
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def text_buffers(norm: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, int64 offsets (N+1,)) of a string array, without copying the bytes."""
    width = np.int64 if pa.types.is_large_string(norm.type) else np.int32  # a pandas or polars table: large
    offsets = np.frombuffer(norm.buffers()[1], width)[norm.offset:norm.offset + len(norm) + 1]
    data = np.frombuffer(norm.buffers()[2], np.uint8) if norm.buffers()[2] else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


def byte_blocks(offsets: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) runs of the texts between `offsets`: the texts that start within each
    BLOCK_BYTES (so a run holds at most that plus its last text)."""
    windows = offsets[0] + np.arange(0, max(offsets[-1] - offsets[0], 1), BLOCK_BYTES)
    bounds = np.unique(np.r_[np.searchsorted(offsets[:-1], windows), len(offsets) - 1]).tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def text_runs(texts: pa.ChunkedArray | pa.Array) -> list[tuple[int, int]]:
    """byte_blocks of texts in any number of buffers (a column read from a file)."""
    lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False)
    return byte_blocks(np.r_[0, np.cumsum(lengths, dtype=np.int64)])


def text_hashes(norm: pa.StringArray) -> np.ndarray:
    """uint64 (N,): a hash of each text's bytes, equal for equal texts (a collision between two
    different texts is about as likely as 1 in 2**64)."""
    data, offsets = text_buffers(norm)
    return np.concatenate([_bytes_hash(data, offsets[start:stop + 1]) for start, stop in byte_blocks(offsets)]
                          + [np.zeros(0, np.uint64)])


def _bytes_hash(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    lengths = np.diff(offsets)
    begins = offsets[:-1] - offsets[0]
    position = np.arange(offsets[-1] - offsets[0]) - np.repeat(begins, lengths)
    values = _splitmix(data[offsets[0]:offsets[-1]].astype(np.uint64) + position.astype(np.uint64) * np.uint64(257))
    sums = np.zeros(len(lengths), np.uint64)
    some = lengths > 0
    if some.any():
        sums[some] = np.add.reduceat(values, begins[some])
    return _splitmix(sums ^ lengths.astype(np.uint64))


def minhash(norm: pa.StringArray, hasher, size: int | None, num_perm: int, seed: int) -> np.ndarray:
    """uint32 (N, num_perm) MinHash signatures of the shingle hashes `hasher` yields per text,
    hashed a byte_blocks run at a time."""
    data, offsets = text_buffers(norm)
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    out = np.empty((len(norm), num_perm), np.uint32)
    for start, stop in byte_blocks(offsets):
        hashes, first = hasher(data, offsets[start:stop + 1], size)
        for p in range(num_perm):
            values = ((a[p] * hashes + b[p]) >> np.uint64(32)).astype(np.uint32)
            out[start:stop, p] = np.minimum.reduceat(values, first)
    return out


def char_hashes(data: np.ndarray, offsets: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every `size`-byte window inside each text (a text shorter than that: one window)."""
    lengths = np.diff(offsets)
    counts = np.maximum(lengths - size + 1, 1)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    starts = np.repeat(offsets[:-1], counts) + np.arange(counts.sum()) - np.repeat(first, counts)
    width = np.repeat(np.minimum(lengths, size), counts)
    hashes = np.zeros(len(starts), np.uint64)
    padded = np.r_[data, np.zeros(size, np.uint8)]
    for j in range(size):
        byte = np.where(j < width, padded[starts + j], 0).astype(np.uint64)
        hashes = hashes * np.uint64(1_000_003) + byte
    return _splitmix(hashes), first


def word_spans(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text, byte start, length) of every space-separated word of the texts between `offsets`
    (text numbered from 0 at offsets[0])."""
    text = data[offsets[0]:offsets[-1]]
    local = offsets - offsets[0]
    doc_of = np.repeat(np.arange(len(local) - 1), np.diff(local))
    letter = text != SPACE
    new_doc = np.r_[True, doc_of[1:] != doc_of[:-1]][: len(text)]
    begins = np.flatnonzero(letter & (new_doc | ~np.r_[False, letter[:-1]][: len(text)]))
    ends = np.flatnonzero(letter & (np.r_[new_doc[1:], True] | ~np.r_[letter[1:], False]))
    return doc_of[begins], begins + offsets[0], ends - begins + 1


def span_hashes(data: np.ndarray, begin: np.ndarray, length: np.ndarray) -> np.ndarray:
    """A uint64 hash of each byte span (a word)."""
    if not len(begin):
        return np.zeros(0, np.uint64)
    first = np.r_[0, np.cumsum(length)[:-1]]
    position = np.arange(length.sum()) - np.repeat(first, length)
    letters = _splitmix(data[np.repeat(begin, length) + position].astype(np.uint64)
                        + position.astype(np.uint64) * np.uint64(257))
    return _splitmix(np.add.reduceat(letters, first))


def word_hashes(data: np.ndarray, offsets: np.ndarray, _size=None) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every space-separated word of each normalised text (an empty text: one hash)."""
    doc, begin, length = word_spans(data, offsets)
    words_per_doc = np.bincount(doc, minlength=len(offsets) - 1)
    counts = np.maximum(words_per_doc, 1)
    out = np.zeros(counts.sum(), np.uint64)
    out[np.repeat(words_per_doc > 0, counts)] = span_hashes(data, begin, length)
    return out, np.r_[0, np.cumsum(counts)[:-1]]


def band_keys(columns: np.ndarray) -> np.ndarray:
    """One uint64 key per row from several uint32 columns (an LSH band)."""
    key = np.zeros(len(columns), np.uint64)
    for column in columns.T:
        key = _splitmix(key ^ column.astype(np.uint64))
    return key


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
