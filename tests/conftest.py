"""Shared fixtures: small slices of the real bundled sample, and the sample map built once.
Under ATLAS_STRICT=1 (set by .ci/run; CI=true too) every skip fails the run: in CI a missing
part (Chromium, the bundled model) must not pass as a skip."""

from __future__ import annotations

import os
import tempfile

# Numba compiles for the machine's own CPU, and UMAP's and NN-descent's float sums come out
# differently with AVX-512 than with AVX2: the seeded maps these tests read (topics, their
# keywords, layouts) differed between two 2-core boxes. Compiled for a generic x86-64 CPU, the
# same code gives the same numbers on each. Those kernels are cached apart from the ones a build
# compiles for this CPU (next to the packages' sources): in one cache they would let a later build
# take its own kernels for compiled, and price UMAP without their compilation (estimate.py).
os.environ.setdefault("NUMBA_CPU_NAME", "generic")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "atlas-tests-numba-generic"))

from pathlib import Path  # noqa: E402

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atlas.settings import BuildSettings, EmbedSettings, LabelSettings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "debian_packages.parquet"
STRICT = os.environ.get("ATLAS_STRICT") == "1" or os.environ.get("CI") == "true"
SMALL_SETTINGS = BuildSettings(text_columns=("description",), id_column="package", seed=42,
                               embed=EmbedSettings(embedder="static"), label=LabelSettings(method="keywords"))


def _strict(report) -> None:
    """Turn a skip into a failure that gives the skip's reason."""
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped under ATLAS_STRICT=1 (CI), which fails every skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _strict((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    _strict((yield).get_result())


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; a session fixture, so a missing one is found before any slow build."""
    import shutil

    path = shutil.which("chromium")
    if not path:  # a failure under ATLAS_STRICT=1, as in CI
        pytest.skip("Debian's chromium is not installed: scripts/setup --dev installs it, or says how")
    return path


@pytest.fixture(scope="module")
def chromium(chromium_path):
    """Chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def sample_table() -> pa.Table:
    return pq.read_table(SAMPLE)


@pytest.fixture(scope="session")
def small_table(sample_table) -> pa.Table:
    """400 real records: enough for every stage, fast with the static embedder."""
    return sample_table.slice(0, 400)


@pytest.fixture(scope="session")
def small_map(tmp_path_factory, small_table):
    """A map of the 400 records, built with the static embedder and keyword labels (fast)."""
    from atlas.pipeline.run import build

    d = tmp_path_factory.mktemp("small")
    pq.write_table(small_table, d / "packages.parquet")
    return build(d / "packages.parquet", d / "map", SMALL_SETTINGS, quiet=True, log=lambda _: None)


@pytest.fixture
def small_parquet(tmp_path, small_table) -> Path:
    path = tmp_path / "packages.parquet"
    pq.write_table(small_table, path)
    return path


@pytest.fixture(scope="session")
def sample_map(tmp_path_factory):
    """The bundled sample built with default settings (MiniLM), as `atlas demo` builds it."""
    from atlas.pipeline.run import build
    from atlas.settings import BuildSettings

    out = tmp_path_factory.mktemp("sample") / "map"
    settings = BuildSettings(text_columns=("description",), id_column="package", seed=42)
    return build(SAMPLE, out, settings, quiet=True, log=lambda _: None)


@pytest.fixture(scope="session")
def curation_maps(tmp_path_factory, small_map, small_table):
    """Two versions of the small map for curation tests: the 400 records, and the same data
    with rows 0-39 dropped. Copy one before editing it (`curated` is a copy of the first)."""
    from atlas.pipeline.run import build

    d = tmp_path_factory.mktemp("changed")
    pq.write_table(small_table.slice(40), d / "changed.parquet")
    return [small_map, build(d / "changed.parquet", d / "map", SMALL_SETTINGS, quiet=True, log=lambda _: None)]


@pytest.fixture
def curated(tmp_path, small_map):
    """A fresh copy of the small map (its own edit log and tile cache): edit it freely."""
    import shutil

    from atlas.mapdir import MapDir

    return MapDir(shutil.copytree(small_map.path, tmp_path / "map"))


@pytest.fixture(scope="session")
def local_client():
    """Makes a TestClient that calls an app as its own page on 127.0.0.1 does (with the write secret)."""
    from fastapi.testclient import TestClient

    return lambda app: TestClient(app, base_url="http://127.0.0.1:8000", headers={"X-Atlas-Token": app.state.secret})
