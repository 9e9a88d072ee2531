"""Topic labels and one-sentence descriptions, written by a local LLM and chosen by meaning.

Topics are labelled finest level first, so a parent is named from its children's labels
(with their shares of it) and the hierarchy reads as one taxonomy. For each topic the model
gives several answers (one greedy, the rest sampled; six for a parent, the model's own
number for a finest topic). A candidate must pass cheap checks (length, no list, not
generic, not a copied example, no repeated word, not a subtopic's name, nothing named that
the model was not shown; a word repeated in another form, "Fonts and font types", or a name
few of its texts write, "OpenTelemetry instrumentation for vLLM", only where the topic would
keep its keyword list) and fit its topic by meaning better than any other topic of its
level (label_fit); an opening most of its texts share (label_facts) that fits is weighed with
them. When none fits, a finest topic's answers that another topic fits as well are tried with
a name its texts write ("Web server" with "Haskell": `qualified`), and one that fits wins;
else the set is asked for once more with the reasons; then comes a name from facts about its
texts (label_facts: their script or language, or one text repeated); a parent takes a
subtopic's label only when no answer is about its texts (and its own repeated text, whatever
the model says, when each child is named by one); the keyword list is the last resort.
`source` records which happened. A topic whose one child holds all its records is the same
place on the map: it takes the child's name, source and description, and the model is not
asked (unless the child fell back to its keyword list). Once every level is
named, the names are chosen together (label_tree): among each topic's names that fit nearly
as well as its best, the ones under which children's names sit nearest their own parent's; a
changed name keeps the description written for the earlier one when it still fits (checks,
and meaning), else gets a new one. The topics of a level are named in parallel, one
llama.cpp context per thread, and kept distinct from their siblings in topic order, so
timing changes nothing. The model sees a topic's first keywords that each add a word and a
few member texts cut short (prompts): that part of the prompt is read afresh for every
topic, and is most of its cost. Another model may name the finest level (`finest`: a fast one,
on a map with many topics): it holds most of the topics, and a reader zooms in to it last; a
topic it can only leave to its keyword list (or a clumsy name) is asked of the other model (a few
percent of them).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pyarrow as pa

from atlas.llm.cache import AnswerCache
from atlas.llm.llama import Completer
from atlas.llm.models import Catalogued
from atlas.llm.prompts import (
    DESCRIPTION_ONLY,
    EXAMPLE_LABELS,
    LABEL_ONLY,
    MAX_TOKENS,
    Evidence,
    copies_an_example,
    render,
    shown_keywords,
)
from atlas.pipeline.label_fit import MIN_OWN, Fit, FitScorer
from atlas.pipeline.label_qualify import variants, written_names
from atlas.pipeline.label_tree import Options, choose_names
from atlas.pipeline.label_vocabulary import unwritten
from atlas.pipeline.label_words import STOPWORDS, normalised
from atlas.vectors import centre_similarity

GENERIC = {
    "topic", "topics", "various", "miscellaneous", "misc", "other", "others", "general", "generic",
    "unknown", "none", "stuff", "things", "items", "item", "label", "labels", "description", "keywords",
    "texts", "text", "subtopics", "group", "groups", "category", "categories", "dataset", "data", "records",
    "mixed", "assorted", "random", "example", "examples", "content", "list", "misc.",
}
# a parent's largest subtopics shown: a broad mix (the sample's coarse topics hold up to 26) named
# from its 8 largest was named after them ("Perl development" over fonts, XML and spell checkers)
SUBTOPICS_SHOWN = 16
LONGEST_WORD = 30  # characters: longer is words run together, not a name
SAMPLE_TEMPERATURE = 0.8
# answers for a parent, whatever the model: few topics, the hardest to name, and each sampled
# answer is cheap (the topic's prompt is evaluated once); fewer cost the coarse names quality
PARENT_SAMPLES = 6
TRADE = 0.15  # fit score a name may give up, when labels are chosen together, to sit under its parent
# cosine a description written for a topic's earlier name may lose to its chosen name and be kept
DESCRIPTION_SLACK = 0.1
FACT_SOURCES = ("script", "repeated", "opening")  # names from facts about a topic's texts (label_facts)
# a finest topic's answers that another topic fits as well, and names tried on each, to make them specific
QUALIFIED_ANSWERS = 3
WORD = re.compile(r"[\w+#]+(?:[.-][\w+#]+)*")  # a word of a name, with its inner dots and hyphens (Node.js)
CAMEL = re.compile(r"[a-z][A-Z]")  # a capital after a small letter: a name's own casing (GitHub), not a title's
TIER_STEP = 10.0  # score between tiers when labels are chosen together: more than any fit score spans
# a word written twice in two forms, apart ("Fonts and font types"): clumsy, so a name only where a
# topic would otherwise keep its keyword list (accepted as any answer, it changed 31 of 886k's names,
# to such as "Cache-based caches" and "Pandas DataFrames and DataFrame analysis")
REPEATED_FORM = "a word is repeated in another form"
# a name that few of the topic's sampled texts write names one member's detail, not the group: on the 886k
# map "OpenTelemetry instrumentation for vLLM", "Tencent Cloud SSM", "Python wrapper for FIVEM API"
DETAIL_SHARE = 0.05
FEW_WRITE = "which few of these texts write"
# the tier of these two (`soft`): any other acceptable name wins (in a split the finest level's other model is asked)
CLUMSY = 5
KEYWORD_TIER = CLUMSY + 2  # the keyword label's: below a clumsy name that another topic fits as well


@dataclass
class TopicLabels:
    label: list[str]
    description: list[str]
    # per topic: "llm", "llm-retry" (asked again), "llm-qualified" (an answer made specific with a
    # name from its texts), "subtopic" (a child's label), a fact about its texts ("script",
    # "repeated" or "opening": label_facts) or "keywords"
    source: list[str]

    def origins(self) -> tuple[int, int, int]:
        """How many topics the model named, facts about their texts named, and keywords named."""
        facts, keywords = sum(s in FACT_SOURCES for s in self.source), self.source.count("keywords")
        return len(self.source) - facts - keywords, facts, keywords


@dataclass(frozen=True)
class Candidate:
    label: str
    source: str
    description: str = ""  # one that goes with the name (a fact's); else the model writes one
    settled: bool = False  # a fact true of nearly every record (label_facts): it beats any answer


@dataclass(frozen=True)
class Judged:
    candidate: Candidate
    problem: str | None  # from the cheap checks
    fit: Fit | None  # None when no embedder judges meaning

    @property
    def tier(self) -> int | None:
        """-1: a settled fact, a text or a script most records share (label_facts: what the
        records are, whatever the model says; the model is still asked, for when a sibling
        holds that name); 0: a model's answer that fits, or an opening most texts share that
        fits (the records' own words: "PyWinRT projection" over "Windows"; one that does not
        fit, "A Python library", is not acceptable; with no embedder to judge it, 2); 1: a
        model's answer about these texts that another topic fits as well; 2: a name from
        other facts about the texts (their script or language, a repeated text: true, so
        never judged, but less than a name of what they are about); 3 and 4: as 0 and 1 for a
        subtopic's label (a parent named after one child names a member, not the group:
        better than a keyword list, worse than a name for the whole); CLUMSY (5): a model's
        answer that fits but for a `soft` problem (a word repeated in another form, a name few
        of its texts write: still a name, but any other wins); 6: a name few of its texts write
        that another topic fits as well; KEYWORD_TIER (7): the keyword label; None: not
        acceptable."""
        if self.candidate.source == "keywords":
            return KEYWORD_TIER
        if self.candidate.source == "opening" and self.fit is not None:
            return 0 if self.fit.fits else None
        if self.candidate.source in FACT_SOURCES:
            return -1 if self.candidate.settled else 2
        if self.fit and self.fit.own < MIN_OWN:
            return None
        near = self.fit is not None and not self.fit.fits  # about these texts, but not only these
        if self.problem is None:
            return (3 if self.candidate.source == "subtopic" else 0) + int(near)
        # a repeated word in a name another topic fits as well is too much ("Fonts and font types" over GTK)
        if self.candidate.source == "subtopic" or not soft(self.problem) or (near and self.problem == REPEATED_FORM):
            return None
        return CLUMSY + int(near)

    @property
    def reason(self) -> str:
        return self.problem or self.fit.problem


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
    scorer: FitScorer | None = None,
    samples: int = Catalogued.samples,
    cache: AnswerCache | None = None,
    facts: list[list[Candidate]] | None = None,
    levels: set[int] | None = None,
    current: TopicLabels | None = None,
    finest: tuple[Completer, int] | None = None,
    vocabulary: frozenset[str] | None = None,
    members: list[list[str]] | None = None,
    on_topic: Callable[[TopicLabels], None] = lambda result: None,
) -> TopicLabels:
    """Label every topic (or only those at `levels`, keeping `current` for the rest), finest first.

    `facts` holds each topic's names from facts about its texts (label_facts.topic_facts).
    `finest` (a completer and its answers per topic) names the finest level instead of
    `completer`, which then names the levels above and the finest topics that `finest` can
    only leave to their keyword lists or to a clumsy name (CLUMSY).

    `vocabulary` (label_vocabulary.map_vocabulary) holds the words a name may use that its
    evidence does not; without it, any word passes.

    `members` holds each topic's sampled member texts (label_facts.sampled_texts): a name that
    few of them write is one member's (`member_detail`); without them, none is.

    `on_topic` gets the partial result (the same object, updated in place) after each topic.
    """
    base = current or keyword_labels(keywords, fallback)
    result = TopicLabels(list(base.label), list(base.description), list(base.source))
    children = [[] for _ in range(len(parent))]
    for topic in np.argsort(-size, kind="stable"):
        if parent[topic] >= 0:
            children[parent[topic]].append(int(topic))
    # a topic whose one child holds all its records is the same place on the map: it takes the child's name
    # (unless the child fell back to keywords)
    same = {t: kids[0] for t, kids in enumerate(children) if len(kids) == 1 and size[kids[0]] == size[t]}
    deepest = int(level.max()) if len(level) else 0
    namers: dict[int, list[_Namer]] = {}  # per level, in the order asked
    lowered = None if members is None else [[(text or "").lower() for text in texts] for texts in members]
    for lvl in np.unique(level):
        models = [finest, (completer, samples)] if finest and lvl == deepest else [(completer, samples)]
        namers[int(lvl)] = [_Namer(model, scorer, answers, cache, vocabulary, lowered) for model, answers in models]
    taken: dict[int, set[str]] = {}
    options: dict[int, list[Judged]] = {}
    written: set[int] = set()  # topics whose description the model wrote, for the name they had then
    named_by: dict[int, _Namer] = {}  # the namer whose answers each topic's names are (it describes them)

    def evidence(topic: int) -> Evidence:
        kids = children[topic]
        subtopics = [(result.label[c], size[c] / size[topic]) for c in kids[:SUBTOPICS_SHOWN]]
        # a parent is named from its children: central texts would pull it towards one of them
        return Evidence(shown_keywords(keywords[topic]), [] if kids else examples[topic], subtopics)

    def name(topic: int) -> tuple[list[Judged], str]:
        kids = children[topic]
        known = [*(facts[topic] if facts else []), Candidate(fallback[topic], "keywords")]
        if kids and all(result.source[c] == "repeated" for c in kids):
            # its children are texts repeated: so is the parent, whatever the model makes of their names
            # ("Repeated distributions" over "Gaussian distributions" and "Gaussian and Binomial distributions")
            known = [replace(c, settled=True) if c.source == "repeated" else c for c in known]
        if topic in same:  # no model call: its facts and keywords only for when a sibling holds the name
            return rank([Judged(c, None, None) for c in [_inherited(result, same[topic]), *known]]), ""
        own = {normalised(result.label[c]) for c in kids} if len(kids) > 1 else set()
        # a parent takes a fact's name from its own texts, not from a child's
        fallbacks = [Candidate(result.label[c], "subtopic") for c in kids
                     if result.source[c] not in ("keywords", *FACT_SOURCES)]
        # a parent is a category: one member's name would narrow it, so only a finest topic is made specific
        qualify = partial(qualified, names=[] if kids else written_names(keywords[topic], examples[topic]),
                          texts=examples[topic])
        # the next model is asked only where this one leaves a keyword list or a clumsy name; on a tie
        # the later model's names are kept
        best = None
        for namer in namers[int(level[topic])]:
            ranked, description = namer.name(topic, evidence(topic), own, fallbacks, known, qualify)
            if best is None or ranked[0].tier <= best[0][0].tier:
                best, named_by[topic] = (ranked, description), namer
            if ranked[0].tier < CLUMSY:
                break
        return best

    def namer_of(topic: int) -> _Namer:
        """The namer whose answers name the topic (a same-place topic asked none: its level's first)."""
        return named_by.get(topic) or namers[int(level[topic])][0]

    def describe(topic: int) -> str:
        return namer_of(topic).describe(topic, evidence(topic), result.label[topic])

    def still_describes(topic: int, earlier: str) -> bool:
        """Whether the description the model wrote for the topic's earlier name serves its chosen
        one: it passes the same checks under the chosen name, and reads about as near it as the
        earlier name (another of a topic's names can read the texts another way: "Cluster
        monitoring" and "Data mining and clustering")."""
        description, label = result.description[topic], result.label[topic]
        if topic not in written or not namer_of(topic).description_fits(topic, description, evidence(topic), label):
            return False
        said, chosen, before = scorer.embed([description, label, earlier])
        return float(said @ chosen) >= float(said @ before) - DESCRIPTION_SLACK

    with _ordered_map(max((n.completer.contexts for ns in namers.values() for n in ns), default=1)) as run:
        for lvl in sorted({int(v) for v in level}, reverse=True):
            if levels is not None and lvl not in levels:
                continue
            todo = [t for t in range(len(parent)) if level[t] == lvl]
            # a same-place child the model could not name leaves its parent to be asked
            same = {t: c for t, c in same.items() if level[t] != lvl or result.source[c] != "keywords"}
            if scorer:
                level_scorer = scorer.with_names(todo, [children[t] for t in todo], result.label, size)
                for namer in namers[lvl]:
                    namer.scorer = level_scorer
            for topic, (ranked, description) in zip(todo, run(name, todo)):
                siblings = taken.setdefault(int(parent[topic]), set())
                chosen = next(j.candidate for j in ranked if _shareable(j.candidate)
                              or normalised(j.candidate.label) not in siblings)
                label = _distinct(chosen, keywords[topic], siblings)
                result.label[topic], result.source[topic] = label, chosen.source
                if chosen.description:
                    result.description[topic] = chosen.description
                elif chosen is ranked[0].candidate and description:
                    result.description[topic] = description
                    written.add(topic)
                else:
                    result.description[topic] = keyword_description(keywords[topic])
                siblings.add(normalised(label))
                options[topic] = ranked
                on_topic(result)
        if scorer and options:
            # descriptions that do not serve the chosen name are written again (the topic's prompt
            # evaluated again), finest first, as they were named: each context switches worked examples once
            earlier = list(result.label)
            changed = _choose_together(result, options, parent, level, keywords, scorer)
            redo = sorted((t for t in changed if not still_describes(t, earlier[t])), key=lambda t: -level[t])
            for topic, description in zip(redo, run(describe, redo)):
                result.description[topic] = description or keyword_description(keywords[topic])
            _follow_children(result, {t: c for t, c in same.items() if t in options}, parent, level)
    return result


def _inherited(result: TopicLabels, child: int) -> Candidate:
    """The child's name, source and description, as a candidate for the topic that is the same place."""
    return Candidate(result.label[child], result.source[child], result.description[child])


def _follow_children(result: TopicLabels, same: dict[int, int], parent: np.ndarray, level: np.ndarray) -> None:
    """Each topic in `same` takes its child's name as chosen together (finest first, so a chain of
    them ends with its finest one's), in place, unless a sibling holds that name."""
    for topic in sorted(same, key=lambda t: -level[t]):
        child = _inherited(result, same[topic])
        siblings = np.flatnonzero((parent == parent[topic]) & (np.arange(len(parent)) != topic))
        if normalised(child.label) not in {normalised(result.label[s]) for s in siblings}:
            result.label[topic], result.source[topic], result.description[topic] = (
                child.label, child.source, child.description)


def _choose_together(result: TopicLabels, options: dict[int, list[Judged]], parent: np.ndarray, level: np.ndarray,
                     keywords: list[list[str]], scorer: FitScorer) -> list[int]:
    """Choose the named topics' labels together (label_tree), in place; the topics whose label
    changed to one without its own description, which need one written for it."""
    ranked = [_tradeable(options[t]) if t in options
              else [Judged(Candidate(result.label[t], result.source[t]), None, None)] for t in range(len(parent))]
    labels = [j.candidate.label for r in ranked for j in r]
    vectors = scorer.embed(labels)
    start, tree = 0, []
    for topic, r in enumerate(ranked):
        # a worse tier is taken only when siblings hold every name of the better ones
        scores = np.array([(j.fit.score if j.fit else 0.0) - TIER_STEP * (j.tier or 0) for j in r])
        # siblings may share a keyword list or a fact's name: `_distinct` tells them apart afterwards
        keys = [normalised(j.candidate.label) + (f"\0{topic}" if _shareable(j.candidate) else "") for j in r]
        tree.append(Options(keys, scores, vectors[start:start + len(r)]))
        start += len(r)
    chosen = choose_names(tree, parent, level)
    changed, taken = [], {}
    for topic, pick in enumerate(chosen):
        candidate = ranked[topic][pick].candidate
        siblings = taken.setdefault(int(parent[topic]), set())
        label = _distinct(candidate, keywords[topic], siblings)
        siblings.add(normalised(label))
        if topic in options and (label, candidate.source) != (result.label[topic], result.source[topic]):
            result.label[topic], result.source[topic] = label, candidate.source
            if candidate.description:
                result.description[topic] = candidate.description
            else:
                changed.append(topic)
    return changed


class _Namer:
    """Asks the model for one topic's candidates, judges and ranks them; safe across threads."""

    def __init__(self, completer: Completer, scorer: FitScorer | None, samples: int, cache: AnswerCache | None,
                 vocabulary: frozenset[str] | None = None, members: list[list[str]] | None = None):
        self.completer, self.scorer, self.samples, self.cache = completer, scorer, samples, cache
        self.vocabulary, self.members = vocabulary, members

    def name(self, topic: int, evidence: Evidence, own: set[str], fallbacks: list[Candidate],
             known: list[Candidate], qualify: Callable[[list[Judged]], list[Candidate]]) -> tuple[list[Judged], str]:
        """Acceptable candidates best first (`known`: names from facts, then the keyword label,
        last; of those only an opening is judged), and a description of the best one that fits
        the topic, or '' (also when the best carries its own). `qualify` makes answers that
        another topic fits as well more specific (`qualified`)."""
        known = [Judged(c, None, self.scorer.fits(topic, [c.label])[0] if self.scorer and c.source == "opening"
                        else None) for c in known]
        if not (evidence.keywords or evidence.texts or evidence.subtopics):
            return rank(known), ""
        template = self.completer.chat_template
        prompt = render(evidence, template)
        samples = PARENT_SAMPLES if evidence.subtopics else self.samples
        answers = [self._ask(prompt, LABEL_ONLY, SAMPLE_TEMPERATURE if seed else 0.0, seed).strip()
                   for seed in range(samples)]
        judged = self.judge(topic, _unique([Candidate(as_written(a, evidence), "llm") for a in answers]), own, evidence)
        # answers that another topic fits as well, made specific with a name from the texts; those that
        # fit are kept, and the model is asked again only when none does
        specific = [] if any(j.tier == 0 for j in judged) else [
            j for j in self.judge(topic, qualify(judged), own, evidence) if j.tier == 0]
        if not specific and not any(j.tier == 0 for j in judged):
            retry = render(replace(evidence, avoid=[f"{j.candidate.label} ({j.reason})" for j in judged]), template)
            answer = self._ask(retry, LABEL_ONLY, SAMPLE_TEMPERATURE, samples).strip()
            judged += self.judge(topic, [Candidate(as_written(answer, evidence), "llm-retry")], own, evidence)
        judged += specific + self.judge(topic, fallbacks, set(), evidence)
        ranked = rank(judged + known)
        # one description, for the best name, written after it (the same topic prompt, still evaluated)
        best = ranked[0].candidate
        return ranked, "" if best.description else self.describe(topic, evidence, best.label)

    def describe(self, topic: int, evidence: Evidence, label: str) -> str:
        """A description of `label` for the topic, or '' when the model's sentence fails the checks."""
        said = finished(self._ask(render(evidence, self.completer.chat_template, label=label),
                                  DESCRIPTION_ONLY).strip())
        return said if self.description_fits(topic, said, evidence, label) else ""

    def judge(self, topic: int, candidates: list[Candidate], own: set[str], evidence: Evidence) -> list[Judged]:
        fits = self.scorer.fits(topic, [c.label for c in candidates]) if self.scorer else [None] * len(candidates)
        return [Judged(c, self.problem(topic, c, own, evidence), fit) for c, fit in zip(candidates, fits)]

    def problem(self, topic: int, candidate: Candidate, own: set[str], evidence: Evidence) -> str | None:
        """Why a candidate is not acceptable whatever it means (a `soft` problem only when
        nothing else is wrong with it), or None. A subtopic's name is one member's by design:
        whether few of the topic's texts write it is not asked."""
        label = candidate.label
        problem = label_problem(label, own)
        if problem in (None, REPEATED_FORM):
            problem = (invented(label, evidence) or self.unknown(label, evidence) or problem
                       or (None if candidate.source == "subtopic" else self.detail(topic, label)))
        return problem

    def detail(self, topic: int, label: str) -> str | None:
        """Why the label is one member's name (`member_detail`), or None; without the topics'
        sampled texts, never."""
        word = self.members is not None and member_detail(label, self.members[topic])
        return f"names {word}, {FEW_WRITE}" if word else None

    def description_fits(self, topic: int, description: str, evidence: Evidence, label: str) -> bool:
        """A sentence of 4+ words that copies neither a worked example nor the evidence's form,
        names nothing the evidence and its label do not, and fits the topic by meaning."""
        if (len(description.split()) < 4 or copies_an_example(description) or re.search(r"\d%|;", description)
                or description.lower().startswith(("keywords", "texts", "subtopics"))
                or invented(description, evidence, label) or self.unknown(description, evidence, label)):
            return False
        return self.scorer is None or self.scorer.fits(topic, [description])[0].fits

    def unknown(self, text: str, evidence: Evidence, label: str = "") -> str | None:
        """Why `text` uses a word that exists neither in the evidence (nor `label`) nor in
        the vocabulary (no English word, and none of the map's texts writes it), or None."""
        word = self.vocabulary is not None and unwritten(text, _shown(evidence, label), self.vocabulary)
        return f"{word} is not a word these texts use" if word else None

    def _ask(self, prompt: str, grammar: str, temperature: float = 0.0, seed: int = 0) -> str:
        cache = self.cache
        key = cache and AnswerCache.key(self.completer.identity, f"{temperature}\0{seed}\0{grammar}\0{prompt}")
        answer = cache.get(key) if cache else None
        if answer is None:
            answer = self.completer.complete(prompt, grammar=grammar, max_tokens=MAX_TOKENS,
                                             temperature=temperature, seed=seed)
            if cache:
                cache.put(key, answer)
        return answer


def finished(description: str) -> str:
    """The description as a whole sentence: one cut off by the token limit (a list of a parent's
    parts, most often) ends at its last comma; '' when it has none."""
    if description.endswith("."):
        return description
    head, comma, _ = f"{description} ".rpartition(", ")  # not inside a number ("1,000")
    return f"{head.rstrip()}." if comma else ""


def _tradeable(ranked: list[Judged]) -> list[Judged]:
    """The names a topic may take when labels are chosen together: those of its best tier
    within TRADE of its best fit, then the worse tiers (for when siblings hold those)."""
    best = ranked[0]
    return [j for j in ranked if j.tier != best.tier or not j.fit or j.fit.score >= best.fit.score - TRADE]


def rank(judged: list[Judged]) -> list[Judged]:
    """The acceptable candidates, best first: by tier, then by fit."""
    return sorted((j for j in judged if j.tier is not None), key=lambda j: (j.tier, -j.fit.score if j.fit else 0.0))


def label_problem(label: str, taken: set[str]) -> str | None:
    """Why a label is not acceptable whatever it means, or None; `taken` holds normalised
    labels it must not repeat (its subtopics')."""
    words = label.split()
    if not 1 <= len(words) <= 6:
        return "use 1 to 6 words"
    if "," in label:
        return "a list, not a name"
    if max(len(w) for w in words) > LONGEST_WORD:
        return "words run together"
    if re.search(r"\w\.\s|\b(?:is|are) (?:a|an|the)\b", label, re.IGNORECASE):
        return "a sentence, not a name"
    if re.search(r"\bvs\b|\bversus\b", label.lower()):
        return "a comparison, not a name"
    if words[-1].lower() in STOPWORDS | {"is", "are", "its"} or re.match(r"\d+[.)] ", label) or label.endswith(".."):
        return "not a finished name"
    every = re.findall(r"[\w+#]+", label.lower())
    content = [w for w in every if w not in STOPWORDS]
    if not content or all(w in GENERIC for w in content):
        return "too generic"
    if label.lower() in EXAMPLE_LABELS:
        return "copied from an example"
    if len(set(content)) < len(content) or any(
            a.rstrip("s") == b.rstrip("s") for a, b in zip(every, every[1:]) if not {a, b} & STOPWORDS):
        return "a word is repeated"
    if normalised(label) in taken:
        return "a subtopic has this label"
    if len({w.rstrip("s") for w in content}) < len(content):
        return REPEATED_FORM
    return None


def soft(problem: str | None) -> bool:
    """Whether a problem leaves a name acceptable where nothing else is (tier CLUMSY):
    a word repeated in another form, or a name few of the topic's texts write."""
    return problem == REPEATED_FORM or bool(problem and problem.endswith(FEW_WRITE))


def proper_words(text: str, *, capitalised: bool = True) -> list[str]:
    """The words of `text` that name something: with a digit, with a capital after their first
    letter (iOS, LDAC), or (`capitalised`) capitalised after the first word (Android). In title
    case ("Calendar and Date Converter") a capital marks no proper name: only digits and inner
    capitals count."""
    words = WORD.findall(text)
    named = [w for w in words if w[0].isalpha() and w.lower() not in STOPWORDS]
    title_case = len(named) > 2 and all(w[0].isupper() for w in named)
    return [w for i, w in enumerate(words) if re.search(r"\d", w) or re.search(r"[A-Z]", w[1:])
            or (capitalised and i and not title_case and w[0].isupper())]


def invented(text: str, evidence: Evidence, label: str = "") -> str | None:
    """Why `text` names something the model was not shown, or None: each of its `proper_words`
    must occur in the evidence (or in the label a description follows)."""
    shown = _shown(evidence, label).lower()
    word = next((w for w in proper_words(text) if w.lower().rstrip("s") not in shown), None)
    return word and f"names {word}, which these texts do not mention"


def member_detail(label: str, texts: list[str]) -> str | None:
    """The first word of the label with a digit or a capital after its first letter (a version,
    an acronym, a product: `proper_words` but the capitalised) that fewer than DETAIL_SHARE of
    `texts` (a topic's sampled members, in lower case) write, or None: such a name is one
    member's, not the group's ("OpenTelemetry instrumentation for vLLM" over OpenTelemetry
    packages for many tools). A capital alone marks no such name: texts in Portuguese do not
    write "Portuguese", and a model capitalises common words ("Data model and Adapters")."""
    for word in proper_words(label, capitalised=False):
        # from a word's start, a version also after letters ("python3", "v2.0"); a small plural s
        # dropped ("SDKs", not "AWS")
        start = r"(?<![\d.])" if word[0].isdigit() else r"(?<!\w)"
        written = re.compile(start + re.escape(word.removesuffix("s").lower()))
        if sum(bool(written.search(text)) for text in texts) < DETAIL_SHARE * len(texts):
            return word
    return None


def _shown(evidence: Evidence, label: str = "") -> str:
    """Everything the model was shown about a topic (and the label a description follows), as one text."""
    return " ".join([*evidence.keywords, *evidence.texts, *(s for s, _ in evidence.subtopics), label])


def as_written(answer: str, evidence: Evidence) -> str:
    """The answer with each word that the model cased in a way the evidence (its texts and
    subtopic names) never does written as the evidence most often does, when that is a name
    with a capital after a small letter (OpenMP, GitHub, iOS), or an acronym (ESR) the model
    cased so (EsR): "Github" and "openMP" are not names a reader knows. A shouted ordinary word
    (DESCRIPTION, UNKNOWN, AND) is left as the model wrote it."""
    forms = Counter(w for text in [*evidence.texts, *(s for s, _ in evidence.subtopics)] for w in WORD.findall(text))
    commonest: dict[str, str] = {}
    for form, _ in forms.most_common():
        commonest.setdefault(form.lower(), form)

    def written(word: str) -> str:
        form = commonest.get(word.lower(), word)
        if word in forms or word.lower() in STOPWORDS:
            return word
        return form if CAMEL.search(form) or (form.isupper() and CAMEL.search(word)) else word

    return WORD.sub(lambda m: written(m.group(0)), answer)


@contextmanager
def _ordered_map(workers: int) -> Iterator[Callable]:
    """A `map` that runs up to `workers` calls at once, each worker in its own thread for the
    whole run (so each keeps its llama.cpp context), and yields results in order."""
    if workers <= 1:
        yield map
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="label")

    def run(fn, items):
        futures = [pool.submit(fn, item) for item in items]
        for future in futures:
            yield future.result()

    try:
        yield run
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def qualified(judged: list[Judged], names: list[str], texts: list[str]) -> list[Candidate]:
    """The best model answers that another topic fits as well, each made specific with one of
    `names` it lacks (label_qualify.variants)."""
    answers = [j.candidate.label for j in rank(judged) if j.tier == 1][:QUALIFIED_ANSWERS]
    return _unique([Candidate(v, "llm-qualified") for v in variants(answers, names, texts)])


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    """The first candidate of each normalised label."""
    seen: dict[str, Candidate] = {}
    for c in candidates:
        seen.setdefault(normalised(c.label), c)
    return list(seen.values())


def _shareable(candidate: Candidate) -> bool:
    """Whether siblings may both take this candidate (`_distinct` then tells them apart): a
    keyword list, or a fact's name (a second group of empty records is still called that)."""
    return candidate.source == "keywords" or candidate.source in FACT_SOURCES


def _distinct(candidate: Candidate, keywords: list[str], taken: set[str]) -> str:
    """The candidate's label, told apart from its siblings' (`taken`, normalised) when they hold
    it: a keyword list extended with its next keyword, a fact's name numbered (`Empty texts (2)`)."""
    label = candidate.label
    if candidate.source == "keywords":
        variants = [f"{label}, {k}" for k in keywords if k not in label]
    elif candidate.source in FACT_SOURCES:
        variants = [f"{label} ({n})" for n in range(2, len(taken) + 2)]
    else:
        variants = []
    return next((v for v in [label, *variants] if normalised(v) not in taken), label)


def representative_texts(
    texts: pa.ChunkedArray | pa.Array, vectors: np.ndarray, labels: np.ndarray, core: np.ndarray,
    centres: np.ndarray, *, central: int = 4, spread: int = 2, chunk: int = 65_536,
) -> list[list[str]]:
    """Per topic id: a few texts from further out (at the 60th and 85th percentile of distance
    from the topic's centre in embedding space) to show its spread, then its texts nearest the
    centre: small models name what they read last.

    `labels` is (levels, N) topic ids, `core` marks records that are not outliers (they are
    picked only when a topic has nothing else) and `centres` are the topics' unit mean vectors
    (vectors.topic_centres). Identical texts are shown once.
    """
    n_topics = len(centres)
    picks: list[tuple[list[int], list[int]]] = [([], [])] * n_topics
    similarity = centre_similarity(vectors, labels, centres, block=chunk)
    for level_labels, level_similarity in zip(labels, similarity):
        score = level_similarity + np.where(core, 0.0, -4.0)
        order = np.lexsort((-score, level_labels))
        bounds = np.searchsorted(level_labels[order], np.arange(n_topics + 1))
        for topic in np.unique(level_labels):
            members = order[bounds[topic]:bounds[topic + 1]]
            far = members[(np.linspace(0.6, 0.85, spread) * (len(members) - 1)).astype(int)]
            picks[topic] = (members[: central * 3].tolist(), far.tolist())
    chosen = np.unique(np.array([i for near, far in picks for i in near + far], np.int64))
    text_of = dict(zip(chosen.tolist(), texts.take(pa.array(chosen)).to_pylist()))
    shown = []
    for near, far in picks:
        central_texts = _distinct_texts([text_of[i] for i in near], central)
        # a small topic's far text can be a central one: it is shown once, among those
        far_texts = _distinct_texts(central_texts + [text_of[i] for i in far], len(central_texts) + spread)
        shown.append(far_texts[len(central_texts):] + central_texts)
    return shown


def _distinct_texts(candidates: list[str], limit: int) -> list[str]:
    """The first `limit` candidates that differ once case and punctuation are ignored."""
    kept: dict[str, str] = {}
    for text in candidates:
        kept.setdefault(re.sub(r"\W+", " ", text.lower()).strip(), text)
    return [t for key, t in kept.items() if key][:limit]
