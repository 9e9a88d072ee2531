"""Answers made specific with a name their topic's texts write: "Web server" and "Haskell"
give "Haskell web server" and "Web server for Haskell". label.py tries these on a finest
topic whose answers another topic fits as well.
"""

from __future__ import annotations

import re
from collections import Counter

from atlas.pipeline.label_words import STOPWORDS, normalised

QUALIFIERS = 3  # names tried on each answer
OPENERS = STOPWORDS | {"this", "these", "your", "my", "our"}  # capitalised before a name, they join no name


def variants(answers: list[str], names: list[str], texts: list[str]) -> list[str]:
    """Each answer with one of `names` it lacks: "Web extensions" and "Flask" give "Flask web
    extensions" and "Web extensions for Flask" (`texts` tell whether "Web" inside a name is "web")."""
    made = []
    for answer in answers:
        has = set(normalised(answer).split())
        first, rest = answer.split(" ", 1) if " " in answer else (answer, "")
        inner = " ".join([_as_written(first, texts), rest]).strip()
        for name in [n for n in names if not set(normalised(n).split()) <= has][:QUALIFIERS]:
            made.append(f"{name} {inner}")
            if " for " not in f" {answer.lower()} ":
                made.append(f"{answer} for {name}")
    return made


def written_names(keywords: list[str], texts: list[str]) -> list[str]:
    """The keywords that the texts write as a name, as they write it ("Flask", "GNU SASL", "iOS":
    a capital or a digit inside a sentence). Common words make poor qualifiers ("Logs basic
    logging"), so they are left out."""
    return [f for f in (written_form(k, texts) for k in keywords) if f and f != f.lower()]


def written_form(phrase: str, texts: list[str]) -> str | None:
    """How the texts write `phrase` (a lower-case keyword) inside a sentence, most often: "Flask",
    "pytest", "Kubernetes"; None when they never do (only at a sentence's start, or not as written)."""
    forms = _written(phrase, texts).most_common(1)
    return forms[0][0] if forms else None


def _written(phrase: str, texts: list[str]) -> Counter:
    """How often the texts write `phrase` each way inside a sentence (not at the start of a text, line,
    sentence or list item), and not as part of a longer name ("Context Protocol" of "Model Context
    Protocol": a capitalised word just before or after it)."""
    forms = Counter()
    for text in texts:
        for m in re.finditer(rf"(?<![\w.-]){re.escape(phrase)}(?![\w-])", text, re.IGNORECASE):
            before, after = text[:m.start()].rstrip(" "), text[m.end():].lstrip(" ")
            joined = re.search(r"\b[A-Z]\w*$", before)  # "This" or "A" opening a text only open a sentence
            if not (re.search(r"(^|[.!?:;*•\n-])$", before) or re.match(r"[A-Z]", after)
                    or (joined and joined.group(0).lower() not in OPENERS)):
                forms[m.group(0)] += 1
    return forms


def _as_written(word: str, texts: list[str]) -> str:
    """An answer's first word as it reads inside a name: lower case unless the texts capitalise
    it more often than not, and more than once ("Python"; not "Security" of "Security Layer")."""
    if not (word[:1].isupper() and word[1:].islower()):
        return word  # an acronym, a name with inner capitals, or lower case already
    forms = _written(word.lower(), texts)
    capitalised = forms[word]
    return word if capitalised >= 2 and capitalised > sum(forms.values()) - capitalised else word.lower()
