"""Names from facts about a topic's texts: for topics the model cannot name, and in their own words.

Some topics are not about a subject a small model can name from four texts: texts in a script
or language it cannot read (Chinese, Cyrillic, Korean, Spanish, French...), or the same
placeholder uploaded many times ("A small example package", "UNKNOWN", empty texts). Their
keyword lists say nothing to a reader; a fact does. A seeded random sample of each topic's
members (SAMPLED at most) is counted:

- **repeated**: one text (lower case, digits and punctuation ignored), twice or more, is
  REPEATED_SHARE of the sample or more: `Repeated text: "A small example package"` (or
  `Empty texts`); at SETTLED_SHARE or more it is `settled`: the topic's name, whatever a model
  says; when no text is that many but texts written MIN_COPIES times or more (placeholders, templates, empty texts) are
  together, the same: `Empty texts and "Add your description here"`, `Repeated texts like
  "A small example package"` (never settled without empty texts: a family of packages can
  share one template, and a model names it better); a short text (PLACEHOLDER_WORDS at most:
  "UNKNOWN", "test", "This is a dummy package") that PLACEHOLDER_SHARE of a finest topic's
  sample repeat is a placeholder, and names it, settled (a small model invents a subject for
  such a topic: "Tool-specific information" over 36% "UNKNOWN");
- **script**: most of the sample's texts have letters, most of those say what they are written
  in (a non-Latin script, or a language their words tell: languages.py), and REPEATED_SHARE or
  more of those are in non-Latin scripts or languages other than English: named by the main
  one, `Texts in Chinese` (kana makes it Japanese), `Texts in Korean`, `Texts in Cyrillic
  script`, `Texts in Spanish`, or by two when each is SECOND_SCRIPT of the texts with letters
  or more: `Texts in Spanish and Portuguese`. When the named ones are SETTLED_SHARE of the
  texts with letters or more it is settled too (the bundled model reads English: what it says
  about Chinese texts is made up), unless the map is mostly written in them.

- **opening**: when no repeated-text name applies, REPEATED_SHARE or more of the sample (and
  MIN_COPIES at least) begin with the same words (2 to OPENING_WORDS of the first line, two
  of them not stopwords): records made from one template, `Type annotations for boto3` over
  "Type annotations for boto3 EBS 1.43.0 service generated with mypy-boto3-builder", which
  Qwen named only with a word the texts do not show ("AWS") and SmolLM2 with one member's
  7-word name. label.py judges it as it judges the model's answers: it must fit the topic by
  meaning ("A Python library" does not), and it wins where it fits better than they do
  ("PyWinRT projection" over "Windows").

label.py ranks the others (but a settled one) below any acceptable model answer and above a
subtopic's label and the keyword list; each carries its own description.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import numpy as np
import pyarrow as pa

from atlas.pipeline.label import Candidate
from atlas.pipeline.label_qualify import OPENERS
from atlas.pipeline.languages import WORDS, latin_language

SAMPLED = 50  # member texts counted per topic
REPEATED_SHARE = 0.5  # of the sample: one text, or one script (of the texts with letters)
QUOTED_WORDS, QUOTED_CHARS = 5, 36  # a repeated text is quoted this far
MIN_COPIES = 3  # of the sample: a text written this often is boilerplate (a placeholder, a template)
# one text this share of the sample or more is what the topic is: its name beats any answer
# ("A package of examples" over 78% "A small example package", "Statistical error" over empties)
SETTLED_SHARE = 0.6
# a finest topic's short text this share of its sample repeat is a placeholder, and settles its name; a
# parent is a category, and a long text a family's template (Debian's "GNU Fortran compiler This is…")
PLACEHOLDER_SHARE, PLACEHOLDER_WORDS = 1 / 3, 5
OPENING_WORDS = 6  # a shared opening is a name of at most this many words
FILLER = OPENERS | {"is", "are"}  # words that say nothing of what an opening names
ASCII_LETTER = re.compile("[A-Za-z]")
SECOND_SCRIPT = 0.2  # share of the lettered texts a second script needs to be named beside the first
# scripts that (nearly) mean one language are named by it; the others by the script
LANGUAGES = {"CJK": "Chinese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean",
             "GREEK": "Greek", "HEBREW": "Hebrew", "THAI": "Thai", "GEORGIAN": "Georgian", "ARMENIAN": "Armenian"}


def sampled_texts(texts: pa.Array | pa.ChunkedArray, labels: np.ndarray, n_topics: int, *,
                  per_topic: int = SAMPLED, seed: int = 0) -> list[list[str]]:
    """Per topic id, up to `per_topic` of its members' texts drawn at random (seeded); `labels`
    is (levels, N) topic ids row-aligned with `texts`. Only the drawn texts are read."""
    key = np.random.default_rng(seed).random(labels.shape[1])
    picks = [np.empty(0, np.int64)] * n_topics
    for level_labels in labels:
        order = np.lexsort((key, level_labels))
        bounds = np.searchsorted(level_labels[order], np.arange(n_topics + 1))
        for topic in np.unique(level_labels):
            picks[topic] = order[bounds[topic]:min(bounds[topic + 1], bounds[topic] + per_topic)]
    chosen = np.unique(np.concatenate(picks))
    text_of = dict(zip(chosen.tolist(), texts.take(pa.array(chosen)).to_pylist()))
    return [[text_of[i] for i in p.tolist()] for p in picks]


def topic_facts(samples: list[list[str]], parent: np.ndarray, size: np.ndarray) -> list[list[Candidate]]:
    """Each topic's fact names (`fact_names` of its sampled texts; the map's own writing never
    settles one: a map of French texts wants its topics' subjects, not "Texts in French").
    label.py numbers a name a sibling already holds ("Empty texts (2)")."""
    common = map_writing(samples, parent, size)
    parents = set(parent.tolist())
    return [fact_names(sample, common, finest=topic not in parents) for topic, sample in enumerate(samples)]


def map_writing(samples: list[list[str]], parent: np.ndarray, size: np.ndarray) -> str:
    """What most of the map's texts are written in (`writing`; "LATIN" for English or untold),
    estimated from the top-level topics' samples, each weighted by its topic's size."""
    shares = Counter()
    for topic in (t for t in np.flatnonzero(parent < 0) if samples[t]):
        for w, n in Counter(writing(t) or "LATIN" for t in samples[topic]).items():
            shares["LATIN" if w == "English" else w] += size[topic] * n / len(samples[topic])
    return shares.most_common(1)[0][0] if shares else "LATIN"


def fact_names(texts: list[str], common: str = "LATIN", *, finest: bool = False) -> list[Candidate]:
    """The names that facts about a topic's sampled texts give it, the fact that holds for more
    of them first (none for most topics). A script or language other than `common` (the map's
    own writing) that SETTLED_SHARE of the texts with letters are written in is settled; so is
    a placeholder (a short text PLACEHOLDER_SHARE of them repeat) when the topic is `finest`."""
    facts = []
    keys = Counter(_normalised(t) for t in texts)
    key, count = keys.most_common(1)[0] if texts else ("", 0)
    copies = [(k, n) for k, n in keys.most_common() if n >= MIN_COPIES]
    copied = sum(n for _, n in copies)
    placeholder = finest and len(key.split()) <= PLACEHOLDER_WORDS and count >= PLACEHOLDER_SHARE * len(texts)
    if count > 1 and (count >= REPEATED_SHARE * len(texts) or placeholder):
        settled = count >= SETTLED_SHARE * len(texts) or placeholder
        facts.append((count, _repeated(key, _written(key, texts), settled, count >= REPEATED_SHARE * len(texts))))
    elif len(copies) > 1 and copied >= REPEATED_SHARE * len(texts):
        said, empty = [_written(k, texts) for k, _ in copies if k][:2], any(not k for k, _ in copies)
        # settled only with empty texts among them: a few texts without them can be a family's template
        # (Debian's "GNU C Library: n32 Shared libraries" for each architecture), which a model names better
        facts.append((copied, _boilerplate(said, empty, empty and copied >= SETTLED_SHARE * len(texts))))
    elif opening := _opening(texts):
        name, begun = opening
        facts.append((begun, Candidate(name, "opening", f'Most of these records begin "{name} …".')))
    writings = Counter(w for w in map(writing, texts) if w)
    lettered = sum(writings.values())  # most texts must have letters: an empty topic is not "in Chinese"
    told = lettered - writings["LATIN"]  # most of those must say what they are written in
    ranked = [(s, n) for s, n in writings.most_common() if s not in ("LATIN", "English")]
    shown = [(s, n) for s, n in ranked[:2] if n >= SECOND_SCRIPT * lettered] or ranked[:1]
    written = sum(n for _, n in ranked)
    if (ranked and written >= REPEATED_SHARE * told and told >= REPEATED_SHARE * lettered
            and lettered >= REPEATED_SHARE * len(texts)):
        language = " and ".join(_script_name(s) for s, _ in shown)
        share = sum(n for _, n in shown) / lettered
        settled = share >= SETTLED_SHARE and common not in (s for s, _ in shown)
        said = f"{'Most' if share >= REPEATED_SHARE else 'Many'} of these texts are written in {language}."
        facts.append((written, Candidate(f"Texts in {language}", "script", said, settled)))
    # settled first, a repeated text first among those (it says more), then the fact that holds for more
    return [c for _, c in sorted(facts, key=lambda f: (not f[1].settled, f[1].settled and f[1].source != "repeated",
                                                        -f[0]))]


def writing(text: str) -> str | None:
    """What a text is written in: its main script (`main_script`), or for the Latin script the
    language its words tell (languages.latin_language: "English", "Spanish"...), "LATIN" when
    they do not; None without letters."""
    script = main_script(text)
    return (latin_language(text) or script) if script == "LATIN" else script


def main_script(text: str) -> str | None:
    """The script most of the text's letters are written in (unicodedata's first word: LATIN,
    CYRILLIC, HANGUL...; CJK with any kana is HIRAGANA), or None when it has no letters."""
    if text.isascii():  # most texts: every letter is Latin, none to look up
        return "LATIN" if ASCII_LETTER.search(text) else None
    letters = Counter(unicodedata.name(c, "?").split(" ", 1)[0] for c in text if c.isalpha())
    if not letters:
        return None
    script = letters.most_common(1)[0][0]
    kana = letters["HIRAGANA"] + letters["KATAKANA"]
    return "HIRAGANA" if kana and script in ("CJK", "HIRAGANA", "KATAKANA") else script


def _script_name(writing: str) -> str:
    return LANGUAGES.get(writing) or (writing if writing in WORDS else f"{writing.title()} script")


def _written(key: str, texts: list[str]) -> str:
    """The commonest way the texts of one normalised `key` are written, spaces collapsed."""
    return " ".join(Counter(t for t in texts if _normalised(t) == key).most_common(1)[0][0].split())


def _repeated(key: str, text: str, settled: bool, most: bool) -> Candidate:
    """The name of records that repeat one text (`most`: half of them or more; else many)."""
    records = "Most of these records" if most else "Many of these records"
    if not key:
        return Candidate("Empty texts", "repeated",
                         f"{records} have no words (empty, or only digits and punctuation).", settled)
    return Candidate(f'Repeated text: "{_quoted(text)}"', "repeated", f'{records} read "{text[:200]}".', settled)


def _boilerplate(texts: list[str], empty: bool, settled: bool) -> Candidate:
    """Records that mostly repeat a few texts (`texts`, the commonest first), or are empty."""
    quoted = ", ".join(f'"{t[:100]}"' for t in texts)
    if empty:
        return Candidate(f'Empty texts and "{_quoted(texts[0])}"', "repeated",
                         f"Most of these records are empty or repeat a few texts: {quoted}.", settled)
    return Candidate(f'Repeated texts like "{_quoted(texts[0])}"', "repeated",
                     f"Most of these records repeat a few texts: {quoted}.", settled)


def _opening(texts: list[str]) -> tuple[str, int] | None:
    """A name from the longest opening of the texts' first lines that REPEATED_SHARE of them
    (and MIN_COPIES at least) begin with, words compared in lower case without the punctuation
    around them, written as most of those texts write it (`_opening_name`), and how many begin
    with that opening; None when no opening of 2 words is that common, or its name keeps fewer
    than two words that are not stopwords."""
    words = [text.lstrip().split("\n", 1)[0].split()[:OPENING_WORDS] for text in texts]
    keys = [tuple(re.sub(r"^\W+|\W+$", "", w.lower()) for w in ws) for ws in words]
    found = None
    for length in range(2, OPENING_WORDS + 1):
        counts = Counter(key[:length] for key in keys if len(key) >= length)
        common = counts.most_common(1)[0] if counts else None
        if common is None or common[1] < max(MIN_COPIES, REPEATED_SHARE * len(texts)):
            break
        found = common
    if found is None:
        return None
    key, begun = found
    written = Counter(" ".join(ws[:len(key)]) for ws, k in zip(words, keys) if k[:len(key)] == key).most_common(1)[0][0]
    name = _opening_name(written.split())
    return (name, begun) if sum(not _filler(w) for w in name.split()) >= 2 else None


def _opening_name(words: list[str]) -> str:
    """A shared opening's words as a name: cut before a sentence's start (a Debian summary runs
    into its description: "GNU Objective-C++ compiler This is"; in Title Case a capital says
    nothing) or an unclosed bracket, after a comma or semicolon (a list's first item; a name
    is not a list), and after its last word that is not filler; without leading punctuation;
    a first word of small letters only is capitalised ("Dataclass for boto3", not "mypy-boto3")."""
    kept = []
    for i, word in enumerate(words):
        sentence = i and word[0].isupper() and not words[i - 1][0].isupper() and word.lower() in OPENERS
        if sentence or word.count("(") != word.count(")") or word.count("[") != word.count("]"):
            break
        kept.append(word.rstrip(",;"))
        if word.endswith((",", ";")):
            break
    while kept and _filler(kept[-1]):
        kept.pop()
    while kept and not re.search(r"\w", kept[0]):
        kept.pop(0)
    name = " ".join(kept).rstrip(" -:.")
    return name[:1].upper() + name[1:] if kept and kept[0].isalpha() and kept[0].islower() else name


def _filler(word: str) -> bool:
    """A stopword (or "this", "is"...), or punctuation alone: no part of what a name says."""
    key = re.sub(r"\W", "", word.lower())
    return not key or key in FILLER


def _quoted(text: str) -> str:
    """The text's first words, up to QUOTED_WORDS and QUOTED_CHARS, with … when cut."""
    whole = text.rstrip(" ,.;:!")
    words = whole.split(" ")[:QUOTED_WORDS]
    while len(words) > 1 and len(" ".join(words)) > QUOTED_CHARS:
        words.pop()
    quoted = " ".join(words)[:QUOTED_CHARS].rstrip(" ,.;:!")
    return quoted + ("…" if len(quoted) < len(whole) else "")


def _normalised(text: str) -> str:
    """Lower case, digits and punctuation dropped: a placeholder with a version or number filled in reads the same."""
    return " ".join(re.sub(r"[\W\d_]+", " ", text.lower()).split())
