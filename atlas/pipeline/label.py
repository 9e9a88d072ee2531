"""Topic labels and one-sentence descriptions, written by a local LLM from each topic's evidence.

Topics are labelled finest level first, so a parent is named from its children's labels
plus its own keywords and the hierarchy reads as one taxonomy. Every answer is validated
(length, not generic, not copied, grounded in the topic's words, distinct from its
siblings); a rejected answer is retried once with the reason, then the topic falls back
to its keyword label, and `source` records which happened.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from atlas.llm.cache import AnswerCache
from atlas.llm.llama import Completer
from atlas.llm.prompts import EXAMPLE_LABELS, GRAMMAR, MAX_TOKENS, Evidence, parse, render
from atlas.vectors import centre_similarity, topic_centres

GENERIC = {
    "topic", "topics", "various", "miscellaneous", "misc", "other", "others", "general", "generic",
    "unknown", "none", "stuff", "things", "items", "item", "label", "labels", "description", "keywords",
    "texts", "text", "subtopics", "group", "groups", "category", "categories", "dataset", "data", "records",
    "mixed", "assorted", "random", "example", "examples", "content", "list", "misc.",
}
# Words that tie a label to nearly any software or text topic, so they do not ground it.
WEAK = GENERIC | {"library", "libraries", "package", "packages", "tool", "tools", "support", "file", "files",
                  "module", "modules", "development", "application", "applications", "software", "system",
                  "program", "programs", "based", "using", "service", "services"}
STOPWORDS = {"a", "an", "and", "the", "of", "for", "in", "on", "to", "with", "by", "or", "from", "at", "as"}
SUBTOPICS_SHOWN = 6
# A retry at temperature 0 mostly repeats the rejected answer, feedback or not: sample it.
RETRY_TEMPERATURE = 0.7


@dataclass
class TopicLabels:
    label: list[str]
    description: list[str]
    source: list[str]  # per topic: "llm", "llm-retry" (second answer) or "keywords" (fell back)


def keyword_labels(keywords: list[list[str]], labels: list[str]) -> TopicLabels:
    """Labels from keywords alone, for `--labels keywords` or when no model is installed."""
    return TopicLabels(list(labels), [keyword_description(k) for k in keywords], ["keywords"] * len(labels))


def keyword_description(keywords: list[str]) -> str:
    if not keywords:
        return "Records with no text."
    shown = keywords[:4]
    return f"Texts about {', '.join(shown[:-1])} and {shown[-1]}." if len(shown) > 1 else f"Texts about {shown[0]}."


def llm_labels(
    parent: np.ndarray,
    level: np.ndarray,
    size: np.ndarray,
    keywords: list[list[str]],
    fallback: list[str],
    examples: list[list[str]],
    completer: Completer,
    *,
    cache: AnswerCache | None = None,
    levels: set[int] | None = None,
    current: TopicLabels | None = None,
    on_topic: Callable[[], None] = lambda: None,
) -> TopicLabels:
    """Label every topic (or only those at `levels`, keeping `current` for the rest), finest first."""
    n = len(parent)
    result = current or keyword_labels(keywords, fallback)
    result = TopicLabels(list(result.label), list(result.description), list(result.source))
    children = [[] for _ in range(n)]
    for topic in np.argsort(-size, kind="stable"):
        if parent[topic] >= 0:
            children[parent[topic]].append(int(topic))
    siblings_done: dict[int, set[str]] = {}
    for topic in sorted(range(n), key=lambda t: (-level[t], t)):
        if levels is not None and level[topic] not in levels:
            continue
        subtopics = [result.label[c] for c in children[topic][:SUBTOPICS_SHOWN]]
        # a parent is named from its children: central texts would pull it towards one of them
        evidence = Evidence(keywords[topic][:8], [] if subtopics else examples[topic], subtopics)
        taken = siblings_done.setdefault(int(parent[topic]), set())
        # an only child covers the same records as its parent, so it may share its name
        own = {_norm(s) for s in subtopics} if len(subtopics) > 1 else set()
        label, description, source = _ask(evidence, completer, cache, taken | own)
        if source == "keywords":
            label = _distinct(fallback[topic], keywords[topic], taken)
        result.label[topic] = label
        result.description[topic] = description or keyword_description(keywords[topic])
        result.source[topic] = source
        taken.add(_norm(label))
        on_topic()
    return result


def _ask(evidence: Evidence, completer: Completer, cache: AnswerCache | None,
         taken: set[str]) -> tuple[str, str | None, str]:
    """(label, description or None, source): the first valid label of two tries, with the
    latest valid description.

    `taken` holds the normalised labels it must not repeat: its siblings' and its subtopics'.
    """
    vocabulary = _stems(" ".join(evidence.keywords + evidence.texts + evidence.subtopics))
    description = None
    for source, temperature in (("llm", 0.0), ("llm-retry", RETRY_TEMPERATURE)):
        prompt = render(evidence, completer.chat_template)
        label, said = parse(_complete(prompt, temperature, completer, cache))
        if _description_ok(said):
            description = said
        problem = label_problem(label, vocabulary, taken)
        if problem is None:
            return label, description, source
        evidence = Evidence(evidence.keywords, evidence.texts, evidence.subtopics,
                            evidence.avoid + [f"{label} ({problem})"])
    return "", description, "keywords"


def _complete(prompt: str, temperature: float, completer: Completer, cache: AnswerCache | None) -> str:
    key = AnswerCache.key(completer.identity, f"{temperature}\0{prompt}") if cache else ""
    answer = cache.get(key) if cache else None
    if answer is None:
        answer = completer.complete(prompt, grammar=GRAMMAR, max_tokens=MAX_TOKENS, temperature=temperature)
        if cache:
            cache.put(key, answer)
    return answer


def label_problem(label: str, vocabulary: set[str], taken: set[str]) -> str | None:
    """Why a label is not acceptable, or None when it is."""
    words = label.split()
    if not 1 <= len(words) <= 6:
        return "use 1 to 6 words"
    content = [w for w in re.findall(r"[\w+#]+", label.lower()) if w not in STOPWORDS]
    if not content or all(w in GENERIC for w in content):
        return "too generic"
    if label.lower() in EXAMPLE_LABELS:
        return "copied from an example"
    if len({w.rstrip("s") for w in content}) < len(content):
        return "a word is repeated"
    if not (_stems(label) - WEAK_STEMS) & vocabulary:
        return "not about these texts"
    if _norm(label) in taken:
        return "a sibling or subtopic has this label"
    return None


def _description_ok(description: str) -> bool:
    return len(description.split()) >= 4 and not any(
        description.lower().startswith(k) for k in ("keywords", "texts", "subtopics"))


def _distinct(label: str, keywords: list[str], taken: set[str]) -> str:
    """A keyword label, extended with the next keyword while a sibling already uses it."""
    for extra in ["", *keywords]:
        candidate = f"{label}, {extra}" if extra and extra not in label else label
        if _norm(candidate) not in taken:
            return candidate
    return label


def _stems(text: str) -> set[str]:
    """Crude stems (first 5 letters of each content word): enough to tie a label to its texts."""
    return {w[:5] for w in re.findall(r"[a-z0-9+#]{3,}", text.lower()) if w not in STOPWORDS}


WEAK_STEMS = _stems(" ".join(WEAK))


def _norm(label: str) -> str:
    return " ".join(w.rstrip("s") for w in re.findall(r"[\w+#]+", label.lower()))


def representative_texts(
    texts: pa.ChunkedArray | pa.Array, vectors: np.ndarray, labels: np.ndarray, core: np.ndarray,
    *, central: int = 4, spread: int = 2, chunk: int = 65_536,
) -> list[list[str]]:
    """Per topic id: its texts nearest the topic's centre in embedding space, then a few from
    further out (at the 60th and 85th percentile of distance) to show its spread.

    `labels` is (levels, N) topic ids and `core` marks records that are not outliers;
    outliers are picked only when a topic has nothing else. Identical texts are shown once.
    """
    n_topics = int(labels.max()) + 1
    picks: list[tuple[list[int], list[int]]] = [([], [])] * n_topics
    for level_labels in labels:
        centres = topic_centres(vectors, level_labels, n_topics, block=chunk)
        score = centre_similarity(vectors, level_labels, centres, block=chunk) + np.where(core, 0.0, -4.0)
        order = np.lexsort((-score, level_labels))
        bounds = np.searchsorted(level_labels[order], np.arange(n_topics + 1))
        for topic in np.unique(level_labels):
            members = order[bounds[topic]:bounds[topic + 1]]
            far = members[(np.linspace(0.6, 0.85, spread) * (len(members) - 1)).astype(int)]
            picks[topic] = (members[: central * 3].tolist(), far.tolist())
    chosen = np.unique(np.array([i for near, far in picks for i in near + far], np.int64))
    text_of = dict(zip(chosen.tolist(), texts.take(pa.array(chosen)).to_pylist()))
    return [_distinct_texts([text_of[i] for i in near], central) + _distinct_texts([text_of[i] for i in far], spread)
            for near, far in picks]


def _distinct_texts(candidates: list[str], limit: int) -> list[str]:
    """The first `limit` candidates that differ once case and punctuation are ignored."""
    kept: dict[str, str] = {}
    for text in candidates:
        kept.setdefault(re.sub(r"\W+", " ", text.lower()).strip(), text)
    return [t for key, t in kept.items() if key][:limit]
