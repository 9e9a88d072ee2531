"""Duplicate pairs of four kinds, review groups, and which record replaces which.

Pairs: exact (equal after normalisation), near (MinHash LSH on character 5-grams and on word
sets), semantic (embedding neighbours by cosine) and template (a near or semantic pair whose
texts name different things, atlas.pipeline.templates). Each pair keeps its similarity (exact
1.0, near the estimated Jaccard, semantic the cosine, template the Jaccard of the word sets),
so groups can be formed again at stricter thresholds (atlas.duplicates).

Review groups are connected components of the pairs, so they show whole neighbourhoods. Removal
never follows a chain (`replacements`): records are taken in the survivor rule's order, each one
not yet taken is kept and takes its direct neighbours, so every removed record is itself linked
to the record kept in its place. Template pairs are not removed unless asked for.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.pipeline.minhash import (
    band_keys,
    char_hashes,
    minhash,
    normalize,
    text_buffers,
    text_hashes,
    word_hashes,
)
from atlas.pipeline.neighbors import Neighbors
from atlas.pipeline.templates import Words, classify, edge_lines
from atlas.schema import PAIR_A, PAIR_B, PAIR_KIND, PAIR_SIMILARITY
from atlas.settings import DedupSettings

KINDS = (None, "exact", "near", "semantic", "template")  # index = code; strictest link first
REMOVED_BY_DEFAULT = ("exact", "near", "semantic")
_ASCII_LETTER = np.zeros(256, bool)
_ASCII_LETTER[np.r_[ord("A"):ord("Z") + 1, ord("a"):ord("z") + 1]] = True


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
    group: np.ndarray  # int64 (N,): review group (all kinds), -1 when the record has no duplicate
    kind: np.ndarray  # int8 (N,): index into KINDS of its strictest link, 0 when none
    survivor: np.ndarray  # bool (N,): kept by the default removal (longest text, REMOVED_BY_DEFAULT)
    pairs: Pairs


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
    return duplicates_from(features, texts, empty, neighbors, settings=settings)


def block_features(batch: pa.Table, *, settings: DedupSettings, seed: int) -> dict[str, np.ndarray]:
    """What dedup needs of each record, computed block by block (the texts are `batch`'s first
    column): the hash of its normalised text, its MinHash signatures (character shingles, words),
    its length in characters, whether the embedder reads it, and hashes of its first and last
    lines. Every value depends on its own record alone."""
    texts = batch.column(0)
    norm = normalize(texts)
    return {
        "exact_hash": text_hashes(norm),
        "char_minhash": minhash(norm, char_hashes, settings.shingle, settings.num_perm, seed),
        "word_minhash": minhash(norm, word_hashes, None, settings.num_perm, seed),
        "length": pc.utf8_length(texts).to_numpy().astype(np.int64),
        "reads": embedder_reads(texts),
        "lines": edge_lines(texts),
    }


def duplicates_from(features: dict[str, np.ndarray], texts: pa.ChunkedArray, empty: np.ndarray,
                    neighbors: Neighbors, *, settings: DedupSettings) -> Duplicates:
    """Pairs of every kind, review groups and the default removal, from every record's
    block_features, the texts and the kNN graph. Exact copies count as one text: near, semantic
    and template pairs join the first records of two distinct texts."""
    exact, firsts = exact_pairs(features["exact_hash"], empty)
    text_of = np.full(len(empty), -1, np.int64)  # each record's distinct text: an index into firsts
    text_of[firsts] = np.arange(len(firsts))
    text_of[exact[1]] = text_of[exact[0]]
    skip = empty | (~features["reads"] if settings.semantic_latin_only else False)
    semantic, cosine = semantic_pairs(neighbors, skip, settings.semantic_threshold)
    semantic = text_of[semantic]
    other = semantic[0] != semantic[1]
    candidates = [signature_pairs(features["char_minhash"], features["word_minhash"], settings, rows=firsts),
                  _dedupe(semantic[:, other], cosine[other])]
    split = _split_templates(candidates, texts.take(pa.array(firsts)), features["lines"][firsts],
                             settings.common_share)
    pairs = Pairs.of([(exact, np.ones(exact.shape[1], np.float32)), *((firsts[e], s) for e, s in split)])
    by_kind = pairs.by_kind()
    group, kind = components(by_kind, len(empty))
    replaced_by, _ = replacements(by_kind, ranks(-features["length"]), REMOVED_BY_DEFAULT)
    return Duplicates(group, kind, replaced_by == np.arange(len(empty)), pairs)


def _split_templates(candidates: list[tuple[np.ndarray, np.ndarray]], texts: pa.ChunkedArray, lines: np.ndarray,
                     common_share: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(near, semantic, template) pairs from the near and semantic candidates between distinct
    texts (with their edge_lines): the template ones taken out of both, with the Jaccard
    similarity of their words."""
    words = Words.of(texts, np.unique(np.concatenate([edges for edges, _ in candidates], axis=1)))
    kept, templates = [], []
    for edges, similarity in candidates:
        template, jaccard = classify(edges, words, lines, common_share)
        kept.append((edges[:, ~template], similarity[~template]))
        templates.append((edges[:, template], jaccard[template]))
    return [*kept, tuple(np.concatenate(part, axis=-1) for part in zip(*templates))]


def embedder_reads(texts: pa.ChunkedArray) -> np.ndarray:
    """Bool (N,): at least half the text's letters are Latin script, which the bundled English
    embedders read; they place texts in other scripts close together whatever they say."""
    flat = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    data, offsets = text_buffers(flat)
    data = data[:offsets[-1]]
    filled = np.flatnonzero(np.diff(offsets) > 0)
    reads = np.zeros(len(flat), bool)
    if not len(filled):
        return reads
    other = np.zeros(len(flat), bool)  # some byte outside ASCII: ask the regex engine
    other[filled] = np.maximum.reduceat(data, offsets[filled]) >= 0x80
    reads[filled] = np.maximum.reduceat(_ASCII_LETTER[data], offsets[filled])
    if other.any():
        subset = flat.filter(pa.array(other))
        latin = pc.count_substring_regex(subset, r"\p{Latin}").to_numpy(zero_copy_only=False)
        letters = pc.count_substring_regex(subset, r"\pL").to_numpy(zero_copy_only=False)
        reads[other] = (letters > 0) & (2 * latin >= letters)
    return reads


def exact_pairs(hashes: np.ndarray, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(2, P) record pairs with equal text hashes (text_hashes of the normalised texts), each
    copy with the first record of its text; and the first record of each distinct text (empty
    texts are never grouped)."""
    codes = np.unique(hashes, return_inverse=True)[1].astype(np.int64).reshape(-1)
    codes[empty] = -1 - np.flatnonzero(empty)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    keep = ~starts
    firsts = np.sort(order[starts & ~empty[order]])
    return np.stack([first[keep], order[keep]]), firsts


def near_pairs(norm: pa.StringArray, settings: DedupSettings, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(2, P) pairs similar as character shingles or as sets of words (MinHash LSH), and the
    higher of their two estimated Jaccard similarities."""
    return signature_pairs(minhash(norm, char_hashes, settings.shingle, settings.num_perm, seed),
                           minhash(norm, word_hashes, None, settings.num_perm, seed), settings)


def signature_pairs(char_signatures: np.ndarray, word_signatures: np.ndarray, settings: DedupSettings,
                    rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Near pairs from the MinHash signatures of character shingles and of word sets of the
    `rows` given (distinct, non-empty texts; default all), as positions in `rows`. The
    signatures are read in place: no copy of them for `rows` (1 KiB a record).

    Character 5-grams catch edits inside words and punctuation; word sets catch a word
    dropped or appended to a short text, which changes too many 5-grams. Two texts with the
    same words in another order ("Convert HTML to Markdown" / "Convert Markdown to HTML") are
    near only when their characters are.
    """
    signatures = [char_signatures, word_signatures]
    rows = np.arange(len(char_signatures)) if rows is None else rows
    n = len(rows)
    pairs = np.concatenate([_lsh_candidates(signature, rows, settings.bands) for signature in signatures], axis=1)
    a, b = np.sort(pairs, axis=0)
    key = np.sort(a * n + b)  # each pair once, as one int64
    pairs = np.stack(np.divmod(key[np.diff(key, prepend=-1) != 0], n))
    chars, words = (_estimated_jaccard(signature, rows[pairs]) for signature in signatures)
    keep = (chars >= settings.near_threshold) | ((words >= settings.word_threshold) & (words < 1))
    return pairs[:, keep], np.maximum(chars, words)[keep]


def _dedupe(edges: np.ndarray, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unordered pair once, with its highest similarity."""
    edges = np.sort(edges, axis=0)
    order = np.lexsort((edges[1], edges[0]))
    edges, similarity = edges[:, order], similarity[order]
    starts = np.flatnonzero(np.r_[True, (edges[:, 1:] != edges[:, :-1]).any(axis=0)][:edges.shape[1]])
    if not len(starts):
        return edges, similarity
    return edges[:, starts], np.maximum.reduceat(similarity, starts)


def _lsh_candidates(signatures: np.ndarray, rows: np.ndarray, bands: int) -> np.ndarray:
    """(2, C) positions in `rows` side by side in some band's sorted keys (MinHash LSH candidates)."""
    width = signatures.shape[1] // bands
    candidates = []
    for band in range(bands):
        key = band_keys(signatures[rows, band * width:(band + 1) * width])
        order = np.argsort(key)  # records with equal keys end up side by side, in any order
        key = key[order]
        same = key[1:] == key[:-1]
        candidates.append(np.stack([order[:-1][same], order[1:][same]]))
    return np.concatenate(candidates, axis=1)


def _estimated_jaccard(signatures: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """float32 (P,): the share of equal MinHash values of each pair, in blocks."""
    blocks = np.array_split(pairs, max(1, pairs.shape[1] // 65_536), axis=1)
    return np.concatenate([np.count_nonzero(signatures[a] == signatures[b], axis=1) / signatures.shape[1]
                           for a, b in blocks] + [np.zeros(0)]).astype(np.float32)


def semantic_pairs(neighbors: Neighbors, skip: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(2, P) neighbour pairs with cosine similarity >= threshold, and that similarity; records
    marked in `skip` (empty, or not read by the embedder) have none."""
    n, k = neighbors.indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = neighbors.indices.ravel().astype(np.int64)
    similarity = (1 - neighbors.distances.ravel()).astype(np.float32)
    keep = (similarity >= threshold) & (rows != cols) & (cols >= 0)
    pairs, similarity = np.stack([rows[keep], cols[keep]]), similarity[keep]
    real = ~(skip[pairs[0]] | skip[pairs[1]])
    return pairs[:, real], similarity[real]


def components(pairs_by_kind: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, kind) of n records linked by (2, P) pairs of each kind (KINDS[1:] order): group
    numbers from 0 in order of first member, -1 alone; kind the strictest link, 0 alone."""
    kind = np.full(n, len(KINDS), np.int8)
    for code, pairs in enumerate(pairs_by_kind, start=1):
        np.minimum.at(kind, pairs.ravel(), code)
    component = _components(np.concatenate(pairs_by_kind, axis=1), n)
    sizes = np.bincount(component)
    in_group = sizes[component] > 1
    group = np.full(n, -1, np.int64)
    _, group[in_group] = np.unique(component[in_group], return_inverse=True)
    kind[~in_group] = 0
    return group, kind


def _components(edges: np.ndarray, n: int) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(edges.shape[1], np.int8), (edges[0], edges[1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def ranks(*keys: np.ndarray) -> np.ndarray:
    """int64 (N,): each record's place when sorted by `keys` (the first key decides, then the
    next; the lowest position last). Rank 0 is kept first."""
    n = len(keys[0])
    rank = np.empty(n, np.int64)
    rank[np.lexsort((np.arange(n), *reversed(keys)))] = np.arange(n)
    return rank


def replacements(pairs_by_kind: list[np.ndarray], rank: np.ndarray,
                 kinds: Collection[str]) -> tuple[np.ndarray, np.ndarray]:
    """(replaced_by, link): for each record, the record kept in its place (itself when kept)
    and the kind of the pair that links them (index into KINDS, 0 when kept).

    Only pairs of `kinds` count. Records are taken in `rank` order; one not yet taken is kept
    and takes every record it is directly paired with, so a removed record is always within its
    kind's threshold of the record that replaces it (no chains). Exact copies count as one text:
    the first in rank order stands for them all (they are kept or removed together, and the
    others are removed as its copies when `exact` is among `kinds`).
    """
    n = len(rank)
    copy = _components(pairs_by_kind[0], n)  # exact copies share a number
    by_rank = np.argsort(rank)
    classes, first = np.unique(copy[by_rank], return_index=True)
    lead = np.empty(len(classes), np.int64)
    lead[classes] = by_rank[first]  # each text's first record in rank order
    codes = [code for code in range(2, len(KINDS)) if KINDS[code] in kinds]
    edges = np.concatenate([pairs_by_kind[code - 1] for code in codes] + [np.zeros((2, 0), np.int64)], axis=1)
    link = np.concatenate([np.full(pairs_by_kind[code - 1].shape[1], code, np.int8) for code in codes]
                          + [np.zeros(0, np.int8)])
    u, v = copy[edges]
    u, v, link = u[u != v], v[u != v], link[u != v]
    kept = _first_come(u, v, rank[lead])
    # each removed text goes to its best-ranked kept neighbour, through its strictest link
    keeper, gone, kind = np.r_[u, v], np.r_[v, u], np.r_[link, link]
    move = kept[keeper] & ~kept[gone]
    keeper, gone, kind = keeper[move], gone[move], kind[move]
    order = np.lexsort((kind, rank[lead[keeper]], gone))
    best = order[np.diff(gone[order], prepend=-1) != 0]
    target = np.arange(len(classes))
    target_kind = np.zeros(len(classes), np.int8)
    target[gone[best]], target_kind[gone[best]] = keeper[best], kind[best]
    replaced_by = lead[target[copy]]
    record_link = target_kind[copy]
    copies = (replaced_by == lead[copy]) & (lead[copy] != np.arange(n))
    if "exact" in kinds:
        record_link[copies] = 1
    else:
        replaced_by[copies] = np.flatnonzero(copies)
    return replaced_by, record_link


def _first_come(u: np.ndarray, v: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Bool (M,): the nodes a greedy pass in rank order keeps, where a kept node drops its
    neighbours (edges u-v). Computed in rounds: a node no undecided neighbour outranks is kept,
    its undecided neighbours dropped, until no edge joins two undecided nodes."""
    undecided, kept = np.ones(len(rank), bool), np.ones(len(rank), bool)
    while len(u):
        outranked = np.zeros(len(rank), bool)
        outranked[np.where(rank[u] < rank[v], v, u)] = True
        new = np.zeros(len(rank), bool)
        new[u] = new[v] = True
        new &= undecided & ~outranked
        undecided[new] = False
        dropped = np.r_[v[new[u]], u[new[v]]]
        kept[dropped] = undecided[dropped] = False
        active = undecided[u] & undecided[v]
        u, v = u[active], v[active]
    return kept
