"""Label prompts: a few worked examples, then one topic's evidence, in the model's own prompt form.

Instruct models get their chat template (from the GGUF metadata); base models get the same
examples as plain text to continue. A grammar forces the answer into `Label: <1-7 words>` (a
7th word marks a name cut short or too long: label.py rejects it, where a 6-word cap would
have passed "Django application to create reports using");
a description is asked separately, after the chosen label, as `Description: <one sentence>.`
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

INSTRUCTION = ("Each group below is one topic found in a dataset. Name the topic with a short, specific "
               "label of 1 to 6 words that says plainly what the records are (junk, spam and offensive "
               "records included), then describe it in one sentence.")
# The topic's part of a prompt is read afresh for every topic (the worked examples before it
# are cached), and it is most of a topic's cost: these bound it.
TEXT_CHARS = 80  # per member text: a one-line summary and a little more (the sample's first lines: median 46)
KEYWORDS_SHOWN = 6

# Answers are forced into these shapes; the words are the model's own. Only the label's word
# count is bounded: a bounded repeat of characters ({12,110}) expands into many grammar rules
# and made each token several times slower.
_RULES = r"""
label ::= word (" " word){0,6}
word ::= [A-Za-z0-9] [A-Za-z0-9+#&'./-]*
sentence ::= [A-Z] [^\n.<>…]+ "."
"""
LABEL_ONLY = 'root ::= " " label "\\n"' + _RULES
DESCRIPTION_ONLY = 'root ::= " " sentence' + _RULES
MAX_TOKENS = 48
_WORD = r"[A-Za-z0-9][A-Za-z0-9+#&'./-]*"


@dataclass(frozen=True)
class Shape:
    """A grammar's answers as a regex over the text before `stop` (which the grammar's answer
    ends with): an answer made without the grammar that matches is one the grammar allows."""

    pattern: re.Pattern
    stop: str


# Checking a grammar costs a pass over the whole vocabulary per token (Qwen's 152k tokens:
# as much as the token itself), so a completer may answer freely first and keep what fits.
SHAPES = {LABEL_ONLY: Shape(re.compile(rf" {_WORD}(?: {_WORD}){{0,6}}"), "\n"),
          DESCRIPTION_ONLY: Shape(re.compile(r" [A-Z][^\n.<>…]+"), ".")}


@dataclass(frozen=True)
class Evidence:
    """What the model sees about one topic."""

    keywords: list[str]
    texts: list[str] = field(default_factory=list)
    subtopics: list[tuple[str, float]] = field(default_factory=list)  # (label, share of the topic)
    avoid: list[str] = field(default_factory=list)  # rejected earlier answers, with the reason

    def render(self) -> str:
        lines = [f"Keywords: {', '.join(self.keywords)}"]
        if self.subtopics:
            lines.append("Subtopics: " + "; ".join(f"{label} ({share:.0%})" for label, share in self.subtopics))
        if self.texts:
            lines += ["Texts:"] + [f"- {_clip(t)}" for t in self.texts]
        lines += [f"Do not answer: {a}" for a in self.avoid]
        return "\n".join(lines)


@dataclass(frozen=True)
class Example:
    evidence: Evidence
    label: str
    description: str

    def answer(self) -> str:
        return f"Label: {self.label}\nDescription: {self.description}"


EXAMPLES = [
    Example(Evidence(["bread", "dough", "oven", "flour", "yeast"],
                     ["Knead the dough for ten minutes, then let it rise in a warm place.",
                      "A simple loaf with flour, water, yeast and salt, baked at 220 C."]),
            "Bread baking recipes", "Home recipes and instructions for baking bread and pastry."),
    Example(Evidence(["test", "placeholder", "hello world", "upload", "reserved"],
                     ["test package please ignore",
                      "Placeholder to reserve this name."]),
            "Placeholder and test uploads", "Empty entries uploaded as tests or to reserve a name."),
    Example(Evidence(["refund", "order", "delivery", "tracking number", "damaged"],
                     ["Where is my order? The tracking number has not changed since Monday.",
                      "The lamp arrived damaged, I would like a refund please."]),
            "Order delivery and refund requests",
            "Customer messages about late deliveries, damaged items and refunds."),
    Example(Evidence(["football", "tennis", "league", "match", "tournament"],
                     subtopics=[("Football league results", 0.5), ("Tennis tournaments", 0.3),
                                ("Marathon running", 0.2)]),
            "Sports competitions", "Reports on football, tennis and other sports events."),
]
# A parent is a category of its subtopics, not its largest one: parents get examples of that.
PARENT_EXAMPLES = [
    EXAMPLES[-1],
    Example(Evidence(["guitar", "piano", "lessons", "drum", "chords"],
                     subtopics=[("Guitar chords for beginners", 0.4), ("Piano sheet music", 0.3),
                                ("Drum kit reviews", 0.2), ("Violin teachers", 0.1)]),
            "Musical instruments and lessons", "Lessons, scores and gear for playing guitar, piano, drums and violin."),
    Example(Evidence(["soup", "cake", "sauce", "chicken", "baking"],
                     subtopics=[("Chocolate cake recipes", 0.35), ("Chicken soup", 0.25), ("Pasta sauces", 0.25),
                                ("Sourdough starter", 0.15)]),
            "Cooking recipes", "Recipes for cakes, soups, sauces and bread."),
    # junk gathers into parents too: a parent of empty and placeholder records is called that
    Example(Evidence(["test", "placeholder", "description", "reserved", "dummy"],
                     subtopics=[("Empty texts", 0.4), ('Repeated text: "test package"', 0.35),
                                ("Name reservation placeholders", 0.25)]),
            "Empty and placeholder entries",
            "Records with no real content: empty, test uploads or names held for later."),
]
EXAMPLE_LABELS = {e.label.lower() for e in EXAMPLES + PARENT_EXAMPLES}


def render(evidence: Evidence, chat_template: str | None, *, label: str | None = None) -> str:
    """The full prompt for one topic; the model continues right after `Label:`, or after
    `Description:` when the label is given."""
    examples = PARENT_EXAMPLES if evidence.subtopics else EXAMPLES
    if chat_template:
        messages = [{"role": "system", "content": INSTRUCTION}]
        for example in examples:
            messages += [{"role": "user", "content": example.evidence.render()},
                         {"role": "assistant", "content": example.answer()}]
        messages.append({"role": "user", "content": evidence.render()})
        prompt = _chat(chat_template, messages) + "Label:"
    else:
        shots = "\n\n".join(f"{e.evidence.render()}\n{e.answer()}" for e in examples)
        prompt = f"{INSTRUCTION}\n\n{shots}\n\n{evidence.render()}\nLabel:"
    return prompt if label is None else f"{prompt} {label}\nDescription:"


def _chat(template: str, messages: list[dict]) -> str:
    return _compiled(template).render(messages=messages, add_generation_prompt=True, bos_token="", eos_token="")


@cache
def _compiled(template: str):
    """The chat template compiled once per model: compiling Qwen's took longer than rendering
    it, two or three times per topic."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)


def copies_an_example(description: str) -> bool:
    """Whether a description repeats four words in a row from a worked example's, or opens
    with an example's first two words ("Reports on ...")."""
    return bool(_four_grams(description) & EXAMPLE_FOUR_GRAMS) or _opening(description) in EXAMPLE_OPENINGS


def _opening(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", text.lower())[:2])


def _four_grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return set(zip(words, words[1:], words[2:], words[3:]))


EXAMPLE_FOUR_GRAMS = set().union(*(_four_grams(e.description) for e in EXAMPLES + PARENT_EXAMPLES))
EXAMPLE_OPENINGS = {_opening(e.description) for e in EXAMPLES + PARENT_EXAMPLES}


def shown_keywords(keywords: list[str], limit: int = KEYWORDS_SHOWN) -> list[str]:
    """The first `limit` keywords that each add a word: a phrase whose words were all shown
    already ("driven" after "behaviour driven") costs prompt tokens and tells the model nothing."""
    shown, seen = [], set()
    for keyword in keywords:
        if len(shown) == limit:
            break
        words = set(keyword.lower().split())
        if not words <= seen:
            shown.append(keyword)
            seen |= words
    return shown


def _clip(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1].rsplit(" ", 1)[0] + "…"
