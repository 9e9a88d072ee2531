"""The Ray path (`atlas build --ray`) on a local Ray with 2 CPUs: the same map as the local path.

Never skipped: Ray is in the dev extra, so a missing Ray fails here."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import SMALL_SETTINGS

import atlas.pipeline.run
from atlas.cli import main
from atlas.errors import AtlasError
from atlas.pipeline.engine import RayEngine
from atlas.pipeline.run import build
from atlas.settings import EmbedSettings

RECORDS = 1000
PLANTED = 40
SETTINGS = replace(SMALL_SETTINGS, embed=EmbedSettings(embedder="static", chunk_size=256))  # 4 blocks


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
    local = build(d / "packages.parquet", d / "local", SETTINGS, **quiet)
    on_ray = build(d / "packages.parquet", d / "ray", SETTINGS, engine=RayEngine("auto"), **quiet)
    return local, on_ray


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


def test_topics_and_coordinates_of_similar_quality(maps):
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import adjusted_rand_score

    vectors = _by_row(maps[0], maps[0].embeddings()).astype(np.float32)
    scores = []
    for m in maps:
        points = m.points(["row", "x", "y"])
        xy = _by_row(m, np.stack([points.column("x").to_numpy(), points.column("y").to_numpy()], axis=1))
        scores.append(trustworthiness(vectors, xy, n_neighbors=10, metric="cosine"))
    assert min(scores) >= 0.8 and abs(scores[0] - scores[1]) <= 0.02  # 0.87 on both here
    local, on_ray = (_by_row(m, m.points(["topic_1"]).column("topic_1").to_numpy()) for m in maps)
    assert adjusted_rand_score(local, on_ray) >= 0.8


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


def _by_row(mapdir, values: np.ndarray) -> np.ndarray:
    """Values in points order, put back in input order."""
    rows = mapdir.points(["row"]).column("row").to_numpy()
    out = np.empty_like(np.asarray(values))
    out[rows] = values
    return out


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
