"""Duplicate groups: exact (after normalisation), near (MinHash LSH) and semantic (kNN cosine).

Pairs of each kind become edges; connected records form one group with one suggested
survivor (the longest text; the first row on ties). A record's kind is the strictest
edge that ties it to its group: exact, then near, then semantic. The pairs are kept, with
their similarity (exact 1.0, near the estimated Jaccard, semantic the cosine), so groups can
be formed again at stricter thresholds (atlas.duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.pipeline.neighbors import Neighbors
from atlas.schema import PAIR_A, PAIR_B, PAIR_KIND, PAIR_SIMILARITY
from atlas.settings import DedupSettings

KINDS = (None, "exact", "near", "semantic")  # index = code in Duplicates.kind
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class Pairs:
    """Duplicate links, each unordered pair once per kind."""

    edges: np.ndarray  # int64 (2, P): record positions
    kind: np.ndarray  # int8 (P,): index into KINDS
    similarity: np.ndarray  # float32 (P,)

    @classmethod
    def of(cls, by_kind: list[tuple[np.ndarray, np.ndarray]]) -> Pairs:
        """From (edges, similarity) per kind, in the order of KINDS[1:]."""
        parts = [_dedupe(edges, similarity) for edges, similarity in by_kind]
        return cls(np.concatenate([edges for edges, _ in parts], axis=1).astype(np.int64),
                   np.concatenate([np.full(e.shape[1], code, np.int8) for code, (e, _) in enumerate(parts, 1)]),
                   np.concatenate([similarity for _, similarity in parts]).astype(np.float32))

    def to_table(self, position: np.ndarray) -> pa.Table:
        """a, b (int32, renumbered by `position`, a < b), kind (string), similarity (float32)."""
        a, b = np.sort(position[self.edges], axis=0).astype(np.int32)
        return pa.table({PAIR_A: a, PAIR_B: b,
                         PAIR_KIND: pa.array(np.array(KINDS, object)[self.kind], pa.string()).dictionary_encode(),
                         PAIR_SIMILARITY: self.similarity})

    def by_kind(self) -> list[np.ndarray]:
        """(2, P) edges of each kind, in the order of KINDS[1:]."""
        return [self.edges[:, self.kind == code] for code in range(1, len(KINDS))]


@dataclass
class Duplicates:
    group: np.ndarray  # int64 (N,): group number, -1 when the record has no duplicate
    kind: np.ndarray  # int8 (N,): index into KINDS, 0 when none
    survivor: np.ndarray  # bool (N,): the suggested record to keep (True when no duplicate)
    pairs: Pairs | None = None


def find_duplicates(
    texts: pa.ChunkedArray,
    empty: np.ndarray,
    neighbors: Neighbors,
    *,
    settings: DedupSettings,
    seed: int = 0,
) -> Duplicates:
    """Duplicates among `texts`: block_features of all of them, then duplicates_from."""
    features = block_features(pa.table({"text": texts}), settings=settings, seed=seed)
    return duplicates_from(features, empty, neighbors, settings=settings)


def block_features(batch: pa.Table, *, settings: DedupSettings, seed: int) -> dict[str, np.ndarray]:
    """What dedup needs of each record, computed block by block (the texts are `batch`'s first
    column): the hash of its normalised text, its MinHash signatures (character shingles, words)
    and its length in characters. Every value depends on its own record alone."""
    texts = batch.column(0)
    norm = normalize(texts)
    return {
        "exact_hash": text_hashes(norm),
        "char_minhash": minhash(norm, char_hashes, settings.shingle, settings.num_perm, seed),
        "word_minhash": minhash(norm, word_hashes, None, settings.num_perm, seed),
        "length": pc.utf8_length(texts).to_numpy().astype(np.int64),
    }


def duplicates_from(features: dict[str, np.ndarray], empty: np.ndarray, neighbors: Neighbors, *,
                    settings: DedupSettings) -> Duplicates:
    """Duplicate groups from every record's block_features and the kNN graph."""
    exact = exact_pairs(features["exact_hash"], empty)
    pairs = Pairs.of([
        (exact, np.ones(exact.shape[1], np.float32)),
        signature_pairs(features["char_minhash"], features["word_minhash"], empty, settings),
        semantic_pairs(neighbors, empty, settings.semantic_threshold),
    ])
    return replace(group_pairs(pairs.by_kind(), features["length"]), pairs=pairs)


def normalize(texts: pa.ChunkedArray) -> pa.StringArray:
    """NFKC, lower case, punctuation removed, whitespace collapsed."""
    text = pc.utf8_lower(pc.utf8_normalize(texts, "NFKC"))
    text = pc.replace_substring_regex(text, r"[^\pL\pN\s]+", "")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s+", " "))
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def exact_pairs(hashes: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """(2, P) record pairs with equal text hashes (text_hashes of the normalised texts): each
    member with its group's first."""
    codes = np.unique(hashes, return_inverse=True)[1].astype(np.int64)
    codes[empty] = -1 - np.flatnonzero(empty)  # empty texts are flagged, never grouped
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    keep = ~starts
    return np.stack([first[keep], order[keep]])


def text_hashes(norm: pa.StringArray) -> np.ndarray:
    """uint64 (N,): a hash of each text's bytes, equal for equal texts (a collision between two
    different texts is about as likely as 1 in 2**64)."""
    data, offsets = _utf8_buffers(norm)
    lengths = np.diff(offsets)
    begins = offsets[:-1] - offsets[0]
    position = np.arange(offsets[-1] - offsets[0]) - np.repeat(begins, lengths)
    values = _splitmix(data[offsets[0]:offsets[-1]].astype(np.uint64) + position.astype(np.uint64) * np.uint64(257))
    sums = np.zeros(len(lengths), np.uint64)
    some = lengths > 0
    if some.any():
        sums[some] = np.add.reduceat(values, begins[some])
    return _splitmix(sums ^ lengths.astype(np.uint64))


def near_pairs(norm: pa.StringArray, empty: np.ndarray, settings: DedupSettings,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(2, P) pairs similar as character shingles or as sets of words (MinHash LSH), and the
    higher of their two estimated Jaccard similarities."""
    return signature_pairs(minhash(norm, char_hashes, settings.shingle, settings.num_perm, seed),
                           minhash(norm, word_hashes, None, settings.num_perm, seed), empty, settings)


def signature_pairs(char_signatures: np.ndarray, word_signatures: np.ndarray, empty: np.ndarray,
                    settings: DedupSettings) -> tuple[np.ndarray, np.ndarray]:
    """Near pairs from the MinHash signatures of character shingles and of word sets.

    Character 5-grams catch edits inside words and punctuation; word sets catch a word
    dropped or appended to a short text, which changes too many 5-grams.
    """
    found = [_lsh_pairs(char_signatures, empty, settings.bands, settings.near_threshold),
             _lsh_pairs(word_signatures, empty, settings.bands, settings.word_threshold)]
    return _dedupe(*(np.concatenate(part, axis=-1) for part in zip(*found)))


def _dedupe(edges: np.ndarray, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unordered pair once, with its highest similarity."""
    edges = np.sort(edges, axis=0)
    order = np.lexsort((edges[1], edges[0]))
    edges, similarity = edges[:, order], similarity[order]
    starts = np.flatnonzero(np.r_[True, (edges[:, 1:] != edges[:, :-1]).any(axis=0)][:edges.shape[1]])
    if not len(starts):
        return edges, similarity
    return edges[:, starts], np.maximum.reduceat(similarity, starts)


def _lsh_pairs(signatures: np.ndarray, empty: np.ndarray, bands: int,
               threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidates that share a band, kept when their estimated Jaccard passes `threshold`."""
    num_perm = signatures.shape[1]
    signatures[empty] = np.arange(num_perm, dtype=np.uint32)  # never equal to a real one
    rows = num_perm // bands
    candidates = []
    for band in range(bands):
        key = _mix(signatures[:, band * rows:(band + 1) * rows])
        order = np.argsort(key, kind="stable")
        same = key[order][1:] == key[order][:-1]
        candidates.append(np.stack([order[:-1][same], order[1:][same]]))
    pairs = np.unique(np.sort(np.concatenate(candidates, axis=1), axis=0), axis=1)
    pairs = pairs[:, ~(empty[pairs[0]] | empty[pairs[1]])]
    similarity = (signatures[pairs[0]] == signatures[pairs[1]]).mean(axis=1).astype(np.float32)
    keep = similarity >= threshold
    return pairs[:, keep], similarity[keep]


def minhash(norm: pa.StringArray, hasher, size: int | None, num_perm: int, seed: int,
            chunk: int = 20_000) -> np.ndarray:
    """uint32 (N, num_perm) MinHash signatures of the shingle hashes `hasher` yields per text."""
    data, offsets = _utf8_buffers(norm)
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    out = np.empty((len(norm), num_perm), np.uint32)
    for start in range(0, len(norm), chunk):
        stop = min(start + chunk, len(norm))
        hashes, first = hasher(data, offsets[start:stop + 1], size)
        for p in range(num_perm):
            values = ((a[p] * hashes + b[p]) >> np.uint64(32)).astype(np.uint32)
            out[start:stop, p] = np.minimum.reduceat(values, first)
    return out


def _utf8_buffers(norm: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of a string array and its int64 offsets (N + 1) into them."""
    width = np.int64 if pa.types.is_large_string(norm.type) else np.int32  # a pandas or polars table: large
    offsets = np.frombuffer(norm.buffers()[1], width)[norm.offset:norm.offset + len(norm) + 1]
    data = np.frombuffer(norm.buffers()[2], np.uint8) if norm.buffers()[2] else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


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


def word_hashes(data: np.ndarray, offsets: np.ndarray, _size=None) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every space-separated word of each normalised text (an empty text: one hash)."""
    text = data[offsets[0]:offsets[-1]]
    local = offsets - offsets[0]
    n_docs = len(local) - 1
    doc_of = np.repeat(np.arange(n_docs), np.diff(local))
    letter = text != 32
    new_doc = np.r_[True, doc_of[1:] != doc_of[:-1]][: len(text)]
    begins = letter & (new_doc | ~np.r_[False, letter[:-1]][: len(text)])
    idx = np.flatnonzero(letter)
    word_hash = np.zeros(0, np.uint64)
    if len(idx):
        begin_pos = np.flatnonzero(begins)
        word_of = np.cumsum(begins)[idx] - 1
        position = (idx - begin_pos[word_of]).astype(np.uint64)
        letters = _splitmix(text[idx].astype(np.uint64) + position * np.uint64(257))
        word_hash = _splitmix(np.add.reduceat(letters, np.flatnonzero(begins[idx])))
    words_per_doc = np.bincount(doc_of[begins], minlength=n_docs)
    counts = np.maximum(words_per_doc, 1)
    out = np.zeros(counts.sum(), np.uint64)
    out[np.repeat(words_per_doc > 0, counts)] = word_hash
    return out, np.r_[0, np.cumsum(counts)[:-1]]


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix(columns: np.ndarray) -> np.ndarray:
    """One uint64 key per row from several uint32 columns (an LSH band)."""
    key = np.zeros(len(columns), np.uint64)
    for column in columns.T:
        key = _splitmix(key ^ column.astype(np.uint64))
    return key


def semantic_pairs(neighbors: Neighbors, empty: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(2, P) neighbour pairs with cosine similarity >= threshold, and that similarity."""
    n, k = neighbors.indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = neighbors.indices.ravel().astype(np.int64)
    similarity = (1 - neighbors.distances.ravel()).astype(np.float32)
    keep = (similarity >= threshold) & (rows != cols) & (cols >= 0)
    pairs, similarity = np.stack([rows[keep], cols[keep]]), similarity[keep]
    real = ~(empty[pairs[0]] | empty[pairs[1]])
    return pairs[:, real], similarity[real]


def group_pairs(pairs_by_kind: list[np.ndarray], lengths: np.ndarray) -> Duplicates:
    """Connected components over all pairs; a survivor per group; each record's strictest kind."""
    group, kind = components(pairs_by_kind, len(lengths))
    return Duplicates(group, kind, pick_survivors(group, -lengths))


def components(pairs_by_kind: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, kind) of n records linked by (2, P) pairs of each kind (KINDS[1:] order): group
    numbers from 0 in order of first member, -1 alone; kind the strictest link, 0 alone."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    kind = np.full(n, len(KINDS), np.int8)
    for code, pairs in enumerate(pairs_by_kind, start=1):
        np.minimum.at(kind, pairs.ravel(), code)
    edges = np.concatenate(pairs_by_kind, axis=1)
    graph = coo_matrix((np.ones(edges.shape[1], np.int8), (edges[0], edges[1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    in_group = sizes[component] > 1
    group = np.full(n, -1, np.int64)
    _, group[in_group] = np.unique(component[in_group], return_inverse=True)
    kind[~in_group] = 0
    return group, kind


def pick_survivors(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Bool (N,): in each group the member that sorts first by `keys` (the first key decides,
    then the next; the lowest position last) survives; a record in no group too."""
    survivor = np.ones(len(group), bool)
    members = np.flatnonzero(group >= 0)
    order = members[np.lexsort((members, *(key[members] for key in reversed(keys)), group[members]))]
    first_of_group = np.r_[True, group[order][1:] != group[order][:-1]]
    survivor[order[~first_of_group]] = False
    return survivor
