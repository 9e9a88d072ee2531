"""Label prompts: a few worked examples, then one topic's evidence, in the model's own prompt form.

Instruct models get their chat template (from the GGUF metadata); base models get the same
examples as plain text to continue. Either way the answer is forced by a grammar into
`Label: <1-6 words>` and `Description: <one sentence>.`
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INSTRUCTION = ("Each group below is one topic found in a dataset. Name the topic with a short, specific "
               "label of 1 to 6 words, then describe it in one sentence.")
TEXT_CHARS = 120

# Answers are forced into this shape; the label words and the sentence are the model's own.
# Only the label's word count is bounded: a bounded repeat of characters ({12,110}) expands
# into many grammar rules and made each token several times slower.
GRAMMAR = r"""
root ::= " " label "\nDescription: " sentence
label ::= word (" " word){0,5}
word ::= [A-Za-z0-9] [A-Za-z0-9+#&'./-]*
sentence ::= [A-Z] [^\n.<>…]+ "."
"""
MAX_TOKENS = 48


@dataclass(frozen=True)
class Evidence:
    """What the model sees about one topic."""

    keywords: list[str]
    texts: list[str] = field(default_factory=list)
    subtopics: list[str] = field(default_factory=list)
    avoid: list[str] = field(default_factory=list)  # rejected earlier answers, with the reason

    def render(self) -> str:
        lines = [f"Keywords: {', '.join(self.keywords)}"]
        if self.subtopics:
            lines.append(f"Subtopics: {'; '.join(self.subtopics)}")
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
    Example(Evidence(["refund", "order", "delivery", "tracking number", "damaged"],
                     ["Where is my order? The tracking number has not changed since Monday.",
                      "The lamp arrived damaged, I would like a refund please."]),
            "Order delivery and refund requests",
            "Customer messages about late deliveries, damaged items and refunds."),
    Example(Evidence(["football", "tennis", "league", "match", "tournament"],
                     subtopics=["Football league results", "Tennis tournaments", "Marathon running"]),
            "Sports competitions", "News and results from football, tennis and other sports events."),
]
EXAMPLE_LABELS = {e.label.lower() for e in EXAMPLES}


def render(evidence: Evidence, chat_template: str | None) -> str:
    """The full prompt for one topic; the model continues right after `Label:`."""
    if chat_template:
        messages = [{"role": "system", "content": INSTRUCTION}]
        for example in EXAMPLES:
            messages += [{"role": "user", "content": example.evidence.render()},
                         {"role": "assistant", "content": example.answer()}]
        messages.append({"role": "user", "content": evidence.render()})
        return _chat(chat_template, messages) + "Label:"
    shots = "\n\n".join(f"{e.evidence.render()}\n{e.answer()}" for e in EXAMPLES)
    return f"{INSTRUCTION}\n\n{shots}\n\n{evidence.render()}\nLabel:"


def _chat(template: str, messages: list[dict]) -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True,
                                            bos_token="", eos_token="")


def parse(answer: str) -> tuple[str, str]:
    """(label, description) from a grammar-shaped answer."""
    label, _, description = answer.partition("\nDescription:")
    return label.strip(), description.strip()


def _clip(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1].rsplit(" ", 1)[0] + "…"
