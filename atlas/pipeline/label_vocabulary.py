"""The words a name may use beyond what the model was shown: English words and the map's own.

A small model writes words that exist nowhere: "Japese and Unicode conversion libraries",
"Unkown and unknown", "Datapandas library", "Topsis and topiks package for topsit" (on the
886k PyPI map, 8 of 524 topics had a name with a word none of its texts writes). A name's word must be
in the evidence the model saw, an English word (MiniLM's vocabulary, which ships with Atlas),
or a word of the map's own texts (a random sample of them: a word the data writes once is in
the evidence when the model used it); label.py rejects a name with any other word.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLED = 200_000  # texts whose words are read, at most: a vocabulary, not a census
SHORTEST = 4  # letters: shorter words are acronyms and particles, left alone
LETTERS = re.compile(r"[^\W\d_]+")


def map_vocabulary(texts: pa.Array | pa.ChunkedArray, *, sampled: int = SAMPLED, seed: int = 0) -> frozenset[str]:
    """The lower-case words of the map's texts (at most `sampled` of them, drawn at random) and English words."""
    if len(texts) > sampled:
        texts = texts.take(pa.array(np.sort(np.random.default_rng(seed).choice(len(texts), sampled, replace=False))))
    words = pc.unique(pc.list_flatten(pc.split_pattern_regex(pc.utf8_lower(texts), r"[^\p{L}]+")))
    return frozenset(words.drop_null().to_pylist()) | english_words()


@cache
def english_words() -> frozenset[str]:
    """MiniLM's whole words (22,501: common English words and well-known names)."""
    from atlas.pipeline.embed import minilm_path  # only when a map is named: embed loads its backends

    return frozenset(w for w in (minilm_path() / "vocab.txt").read_text(encoding="utf-8").split() if w.isalpha())


def unwritten(text: str, shown: str, known: frozenset[str]) -> str | None:
    """The first word of `text` (SHORTEST letters or more) that neither `shown` (the evidence)
    nor `known` holds, as written or with a plural s added or dropped, or None."""
    seen = set(LETTERS.findall(shown.lower()))
    for word in LETTERS.findall(text.lower()):
        forms = {word, f"{word}s", word.removesuffix("s"), word.removesuffix("es")}
        if len(word) >= SHORTEST and not any(f in seen or f in known for f in forms):
            return word
    return None
