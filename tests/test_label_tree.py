"""Labels chosen together: a parent's name by how it gathers its own children's names, siblings
distinct, a child trading a little fit to sit under its parent; on the small map's real topics."""

from __future__ import annotations

import numpy as np
import pytest

from atlas.llm.prompts import DESCRIPTION_ONLY, Evidence
from atlas.pipeline.label import TRADE, invented, normalised
from atlas.pipeline.label_tree import Options, choose_names
from tests.test_label import keywords_line, label_all, scripted, topics  # noqa: F401  (fixture)

KIDS = {8: "Network client tools", 12: "SASL authentication library", 15: "Thrift and MySQL drivers"}


def fixed_options(topics) -> list[Options]:
    """Every topic with one option: its keyword label, or the name given to parent 2's children."""
    names = [KIDS.get(t, label) for t, label in enumerate(topics["fallback"])]
    vectors = topics["scorer"].embed(names)
    return [Options([normalised(n)], np.zeros(1), vectors[t:t + 1]) for t, n in enumerate(names)]


def with_options(options: list[Options], topics, topic: int, names: list[str]) -> list[Options]:
    scores = np.array([f.score for f in topics["scorer"].fits(topic, names)])
    changed = list(options)
    changed[topic] = Options([normalised(n) for n in names], scores, topics["scorer"].embed(names))
    return changed


def test_a_parent_takes_the_name_that_gathers_its_children(topics):
    names = ["SASL authentication", "Thrift and MySQL", "Network protocol clients", "Network clients and drivers"]
    options = with_options(fixed_options(topics), topics, 2, names)
    assert np.argmax(options[2].scores) == 1  # one child's subject fits the records best...
    assert choose_names(options, topics["parent"], topics["level"], weight=0.0)[2] == 1
    chosen = choose_names(options, topics["parent"], topics["level"])
    assert names[chosen[2]] == "Network clients and drivers"  # ...but the category gathers all three


def test_labelling_chooses_parents_together_and_describes_the_chosen_name(topics):
    """Parent 2 named from its children 8, 12 and 15 by a scripted model: of two answers that
    both fit, the one nearer its children's names wins, and gets a description of its own."""
    answers = {keywords_line(topics, t): [f" {name}\n"] for t, name in KIDS.items()}
    parent = keywords_line(topics, 2)
    answers[parent] = [" Network protocol clients\n", " MySQL and SASL clients\n"]
    descriptions = {parent: [" Clients for Kerberos and LDAP servers.", " Clients for MySQL and SASL services."]}
    completer = scripted(answers, descriptions)
    result = label_all(topics, completer)
    assert [result.label[t] for t in (2, 8, 12, 15)] == ["MySQL and SASL clients", *KIDS.values()]
    assert result.source[2] == "llm"
    fits = topics["scorer"].with_names([2], [[8, 12, 15]], result.label, topics["size"]).fits(
        2, ["Network protocol clients", "MySQL and SASL clients"])
    assert fits[0].score > fits[1].score > fits[0].score - TRADE  # the first fits best, by less than TRADE
    prompts = [c[4] for c in completer.calls if c[0] == parent and c[1] == DESCRIPTION_ONLY]
    # the first description, for the best fit, named what the model was not shown (Kerberos)
    assert [p.rsplit("Label: ", 1)[1] for p in prompts] == ["Network protocol clients\nDescription:",
                                                              "MySQL and SASL clients\nDescription:"]
    assert result.description[2] == "Clients for MySQL and SASL services."


def test_names_the_model_was_not_shown_are_rejected():
    evidence = Evidence(["rust", "crate"], ["Rust crate for TOML files, version 0.5"], [("Serde helpers", 1.0)])
    assert invented("Rust crates for TOML and Serde", evidence) is None
    assert invented("The Rust 1.04 release", evidence) == "names 1.04, which these texts do not mention"
    assert invented("Rust crates for Android", evidence) == "names Android, which these texts do not mention"
    assert invented("TOML crates in version 0.5", evidence) is None
    assert invented("Crates known as LDAC.", evidence) == "names LDAC, which these texts do not mention"
    assert invented("Crates known as LDAC.", evidence, label="LDAC crates") is None


def test_siblings_never_share_a_name(topics):
    options = fixed_options(topics)
    for topic in (0, 1):  # siblings at the top level, both best fitted by the same name
        options = with_options(options, topics, topic, ["Software packages", f"Topic {topic} packages"])
        options[topic] = Options(options[topic].keys, np.array([1.0, 0.0]), options[topic].vectors)
    chosen = choose_names(options, topics["parent"], topics["level"])
    assert chosen[:2] == [0, 1]
