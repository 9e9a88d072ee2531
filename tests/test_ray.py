"""The Ray path (`atlas build --ray`) on a local Ray with 2 CPUs: the same map as the local path.

Never skipped: Ray is in the dev extra, so a missing Ray fails here."""

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import replace
from functools import partial
from pathlib import Path

import fakes
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import SMALL_SETTINGS
from fakes import KeywordCompleter, scripted_labels

import atlas.pipeline.engine
import atlas.pipeline.project
import atlas.pipeline.run
from atlas.cli import main
from atlas.errors import AtlasError
from atlas.llm.cache import AnswerCache
from atlas.llm.llama import LlamaCompleter
from atlas.llm.models import ModelFile, find_model
from atlas.llm.prompts import LABEL_ONLY, MAX_TOKENS, Evidence, render
from atlas.mapdir import MapDir
from atlas.pipeline import relabel as relabel_module
from atlas.pipeline.engine import LocalEngine, RayEngine
from atlas.pipeline.label import TopicLabels
from atlas.pipeline.run import build
from atlas.settings import EmbedSettings, LabelSettings, ProjectSettings, cache_dir

RECORDS = 3000
PLANTED = 40
# 12 blocks; UMAP fits 1,000 records and places the other 2,000 in 8 blocks of 256
SETTINGS = replace(SMALL_SETTINGS, embed=EmbedSettings(embedder="static", chunk_size=256),
                   project=ProjectSettings(fit_sample=1000))


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=300 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def maps(local_ray, tmp_path_factory, sample_table):
    d = tmp_path_factory.mktemp("ray")
    table = sample_table.slice(0, RECORDS)
    texts = table.column("description").to_pylist()
    texts[-PLANTED:] = [texts[7 * i].upper() for i in range(PLANTED)]  # exact duplicates in other blocks
    table = table.set_column(table.schema.get_field_index("description"), "description", pa.array(texts))
    pq.write_table(table, d / "packages.parquet")
    quiet = {"quiet": True, "log": lambda _: None}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(atlas.pipeline.project, "PLACE_BLOCK", 256)
        local = build(d / "packages.parquet", d / "local", SETTINGS, **quiet)
        patch.setattr(atlas.pipeline.engine, "RAY_BLOCK_ROWS", 256)  # the same blocks on Ray
        patch.setattr(atlas.pipeline.project, "place_block", _not_here)  # Ray's actors place them
        on_ray = build(d / "packages.parquet", d / "ray", SETTINGS, engine=RayEngine("auto"), **quiet)
    return local, on_ray


def _not_here(*args, **kwargs):
    raise AssertionError("a block was placed in the driver, not by a Ray actor")


def test_engine_in_the_manifest(maps):
    local, on_ray = maps
    assert local.manifest()["engine"] == {"name": "local"}
    engine = on_ray.manifest()["engine"]
    assert {k: engine[k] for k in ("name", "address", "nodes", "cpus", "gpus")} == \
        {"name": "ray", "address": "auto", "nodes": 1, "cpus": 2, "gpus": 0}


def test_same_embeddings(maps):
    local, on_ray = (_by_row(m, m.embeddings()) for m in maps)
    assert local.shape == (RECORDS, 256) and np.allclose(local, on_ray)


def test_same_exact_duplicate_groups(maps):
    local, on_ray = (_exact_groups(m) for m in maps)
    assert len(local) >= PLANTED and local == on_ray
    assert [m.manifest()["duplicates"] for m in maps][0] == [m.manifest()["duplicates"] for m in maps][1]


def test_same_coordinates(maps):
    """Seeded: the sample fit here and the 8 blocks placed by Ray actors give the local map exactly."""
    assert [m.manifest()["settings"]["project"]["fit_sample"] for m in maps] == [1000, 1000]
    local, on_ray = (_by_row(m, _xy(m)) for m in maps)
    assert local.shape == (RECORDS, 2) and np.array_equal(local, on_ray)


def test_topics_and_coordinates_of_similar_quality(maps):
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import adjusted_rand_score

    vectors = _by_row(maps[0], maps[0].embeddings()).astype(np.float32)
    scores = []
    for m in maps:
        scores.append(trustworthiness(vectors, _by_row(m, _xy(m)), n_neighbors=10, metric="cosine"))
    assert min(scores) >= 0.8 and abs(scores[0] - scores[1]) <= 0.02  # 0.818 on both here (the same map)
    local, on_ray = (_by_row(m, m.points(["topic_1"]).column("topic_1").to_numpy()) for m in maps)
    assert adjusted_rand_score(local, on_ray) >= 0.8


def test_labels_pool_names_topics_as_the_local_path_through_the_same_cache(maps, tmp_path, monkeypatch):
    """A scripted model on two Ray actors gives the local labels, and its answers land in the
    answer cache under the local keys: a local run on that cache asks the model nothing."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(fakes)  # the actors cannot import the tests' modules
    scripted_labels(monkeypatch.setattr, tmp_path / "scripted.gguf", completer=KeywordCompleter)
    monkeypatch.setattr(relabel_module, "AnswerCache", lambda _: AnswerCache(cache))

    def relabelled(name: str, engine) -> tuple[TopicLabels, dict]:
        mapdir = MapDir(shutil.copytree(maps[0].path, tmp_path / name))
        result = relabel_module.relabel(mapdir, LabelSettings(contexts=1), engine=engine, quiet=True,
                                        log=lambda _: None)
        return result, mapdir.manifest()["labels"]

    cache = tmp_path / "ray.sqlite"
    on_ray, info = relabelled("ray", RayEngine("auto"))
    answers = _rows(cache)
    assert KeywordCompleter.asked == [] and answers > 100 and info["contexts"] == 2  # one actor per CPU
    assert on_ray.source.count("llm") > len(on_ray.label) / 2, on_ray.source
    cache = tmp_path / "local.sqlite"
    local, _ = relabelled("local", None)
    assert local == on_ray and len(KeywordCompleter.asked) >= answers == _rows(cache)
    KeywordCompleter.asked.clear()
    cache = tmp_path / "ray.sqlite"
    assert relabelled("again", None)[0] == on_ray and KeywordCompleter.asked == []


def test_labels_pool_runs_the_bundled_model_as_this_process_does(local_ray):
    model = find_model("smollm2", cache_dir())
    assert model is not None, "the bundled model is not installed (scripts/setup)"
    make = partial(LlamaCompleter, model, threads=1)
    prompts = [render(Evidence(keywords, [text]), None) for keywords, text in [
        (["rust", "crate", "async"], "An async runtime for Rust crates"),
        (["font", "truetype"], "TrueType fonts for the console"),
    ]]
    answers = []
    for engine in (LocalEngine(), RayEngine("auto")):
        completer = engine.completer(make, 1)
        answers.append([completer.complete(p, grammar=LABEL_ONLY, max_tokens=MAX_TOKENS, temperature=t, seed=s)
                        for p in prompts for t, s in [(0.0, 0), (0.8, 1)]])
        assert completer.identity == model.identity
    assert answers[0] == answers[1] and all(a.strip() for a in answers[0])


def test_a_model_missing_on_a_node_names_the_fix(local_ray, tmp_path):
    make = partial(LlamaCompleter, ModelFile("gone", tmp_path / "gone.gguf"), threads=1)
    with pytest.raises(AtlasError, match="a Ray node could not load the label model; every node needs Atlas, "
                                         "llama-cpp-python and the model at the same path: "
                                         "FileNotFoundError: .*gone.gguf'$"):
        RayEngine("auto").completer(make, 1)


def test_cli_ray_flag_alone_means_auto(local_ray, monkeypatch, small_parquet):
    engines = []
    monkeypatch.setattr(atlas.pipeline.run, "build", lambda *a, engine, **kw: engines.append(engine))
    result = CliRunner().invoke(main, ["build", str(small_parquet), "--text", "description", "--ray"])
    assert result.exit_code == 0, result.output
    assert engines[0].describe()["address"] == "auto"


def test_missing_ray_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(AtlasError, match=r"--ray needs Ray: pip install 'atlas-map\[ray\]'"):
        RayEngine("auto")


def test_nothing_imports_ray_without_the_flag():
    code = ("import sys; import atlas.cli, atlas.pipeline.run, atlas.server.app; "
            "from click.testing import CliRunner; CliRunner().invoke(atlas.cli.main, ['build', '--help']); "
            "print('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def _rows(cache: Path) -> int:
    with closing(sqlite3.connect(cache)) as db:
        return db.execute("SELECT count(*) FROM answers").fetchone()[0]


def _by_row(mapdir, values: np.ndarray) -> np.ndarray:
    """Values in points order, put back in input order."""
    rows = mapdir.points(["row"]).column("row").to_numpy()
    out = np.empty_like(np.asarray(values))
    out[rows] = values
    return out


def _xy(mapdir) -> np.ndarray:
    points = mapdir.points(["x", "y"])
    return np.stack([points.column("x").to_numpy(), points.column("y").to_numpy()], axis=1)


def _exact_groups(mapdir) -> set[frozenset[str]]:
    """Groups of record ids linked by exact pairs."""
    pairs = mapdir.dup_pairs()
    exact = pairs.filter(pc.equal(pairs.column("kind").cast("string"), "exact"))
    ids = np.array(mapdir.points(["id"]).column("id").to_pylist(), dtype=object)
    groups: dict[str, set[str]] = {}
    for a, b in zip(ids[exact.column("a").to_numpy()], ids[exact.column("b").to_numpy()]):
        merged = groups.get(a, {a}) | groups.get(b, {b})
        for member in merged:
            groups[member] = merged
    return {frozenset(group) for group in groups.values()}
