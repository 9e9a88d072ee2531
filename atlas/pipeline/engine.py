"""Where the data-parallel stages run: in this process, or on a Ray cluster (`--ray`).

No stage knows which: the runner hands an engine a `Task` (a batch function, or a class whose
instances are batch functions, e.g. one holding a model) and a table; the function gets whole
batches (a run of one or more `batch_size`-row slices, never part of one), and the engine
yields its outputs (dicts of arrays, one row per input row) in input order, regrouped into
batches of exactly `batch_size` rows (the last may be shorter). For labelling, an engine turns
a completer factory into one Completer: in this process one llama.cpp model with a context per
thread; on Ray a pool of actors, one single-context model each, that the labeller's threads
share (it keeps its answer cache either way). Ray is imported only by RayEngine, so a build
without `--ray` never imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from atlas.errors import AtlasError
from atlas.llm.llama import Completer

Batch = dict[str, np.ndarray]
RAY_INSTALL = "pip install 'atlas-map[ray]'"
# Rows per Ray block at least: each block costs a task or actor call (tens of ms), which at the
# runner's 256-text batches made the static embedder 8x slower on Ray than here at 100k records.
RAY_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class Task:
    """A batch function: `fn(batch)`, or when `fn` is a class, `fn(*args)(batch)` with one
    instance per worker (a model loaded once). `gpu`: a worker gets a GPU when the cluster has them."""

    fn: Callable[..., Batch] | type
    args: tuple = field(default=())
    gpu: bool = False

    def instance(self) -> Callable[[pa.Table], Batch]:
        return self.fn(*self.args) if isinstance(self.fn, type) else self.fn


class Engine(Protocol):
    def map_batches(self, task: Task, table: pa.Table, batch_size: int) -> Iterator[Batch]:
        """`task` over `table` by batches of `batch_size` rows; outputs in input order."""

    def completer(self, make: Callable[..., Completer], contexts: int) -> Completer:
        """A Completer for `contexts` calls at once, from `make(contexts=n)` (a model with n contexts)."""

    def describe(self) -> dict:
        """What ran the build, for the manifest."""


class LocalEngine:
    """Every batch in turn, in this process."""

    def map_batches(self, task: Task, table: pa.Table, batch_size: int) -> Iterator[Batch]:
        fn = None
        for start in range(0, table.num_rows, batch_size):
            fn = fn or task.instance()  # a model loads only if there is a batch
            yield fn(table.slice(start, batch_size))

    def completer(self, make: Callable[..., Completer], contexts: int) -> Completer:
        return make(contexts=contexts)

    def describe(self) -> dict:
        return {"name": "local"}


class RayEngine:
    """Batches as Ray Data blocks of whole batches, RAY_BLOCK_ROWS rows or more: plain functions
    as tasks, classes as a pool of actors (one per CPU, or one per GPU with a GPU each when the
    task wants one and the cluster has GPUs)."""

    def __init__(self, address: str):
        try:
            import ray
        except ImportError:
            raise AtlasError(f"--ray needs Ray: {RAY_INSTALL}") from None
        self.address = address
        if not ray.is_initialized():
            # auto: a cluster already running on this machine (`ray start`), else a new local one.
            ray.init(address=None if address == "auto" else address, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        resources = ray.cluster_resources()
        self.cpus, self.gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        self.nodes = sum(node["Alive"] for node in ray.nodes())

    def map_batches(self, task: Task, table: pa.Table, batch_size: int) -> Iterator[Batch]:
        import logging

        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # not a line per dataset run
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # the runner draws its own
        rows = batch_size * -(-RAY_BLOCK_ROWS // batch_size)
        blocks = [table.slice(start, rows) for start in range(0, table.num_rows, rows)]
        if not blocks:
            return
        dataset = ray.data.from_arrow(blocks)
        if isinstance(task.fn, type):
            on_gpu = task.gpu and self.gpus > 0
            actors = min(len(blocks), self.gpus if on_gpu else self.cpus)
            dataset = dataset.map_batches(
                task.fn, fn_constructor_args=task.args, batch_size=rows, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=1 if on_gpu else 0,
                num_cpus=0 if on_gpu else 1)
        else:
            dataset = dataset.map_batches(task.fn, batch_size=rows, batch_format="pyarrow")
        yield from dataset.iter_batches(batch_size=batch_size, batch_format="numpy")

    def completer(self, make: Callable[..., Completer], contexts: int) -> Completer:
        """One single-context model per cluster CPU, each in an actor (`contexts` is this
        process's count; the cluster's decides here)."""
        import ray

        hosted = ray.remote(num_cpus=1)(HostedCompleter)
        return PooledCompleter([hosted.remote(make) for _ in range(self.cpus)])

    def describe(self) -> dict:
        import ray

        return {"name": "ray", "address": self.address, "ray_version": ray.__version__, "nodes": self.nodes,
                "cpus": self.cpus, "gpus": self.gpus}


class HostedCompleter:
    """A Ray actor's model: one context, so one call at a time."""

    def __init__(self, make: Callable[..., Completer]):
        self.completer = make(contexts=1)

    def describe(self) -> tuple[str, str | None]:
        return self.completer.identity, self.completer.chat_template

    def complete(self, prompt: str, **options) -> str:
        return self.completer.complete(prompt, **options)


class PooledCompleter:
    """A Completer over a pool of HostedCompleter actors: each calling thread keeps one actor
    (its llama.cpp context keeps the thread's topic prompt evaluated, as a local context does)."""

    def __init__(self, actors: list):
        import ray

        self._ray, self._actors = ray, list(actors)
        self.contexts = len(actors)
        try:
            described = ray.get([actor.describe.remote() for actor in actors])  # waits for the models
        except ray.exceptions.RayActorError as error:
            raise AtlasError("a Ray node could not load the label model; every node needs Atlas, llama-cpp-python "
                             f"and the model at the same path: {str(error).splitlines()[-1]}") from None
        self.identity, self.chat_template = described[0]
        self._lock, self._local, self._turn = threading.Lock(), threading.local(), 0

    def _actor(self):
        actor = getattr(self._local, "actor", None)
        if actor is None:
            with self._lock:  # more threads than actors: share them in turn
                actor = self._actors[self._turn % len(self._actors)]
                self._turn += 1
            self._local.actor = actor
        return actor

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> str:
        return self._ray.get(self._actor().complete.remote(prompt, grammar=grammar, max_tokens=max_tokens,
                                                           temperature=temperature, seed=seed))


def engine_for(ray: str | None) -> Engine | None:
    """The engine `--ray` / `ray=` names: Ray on ADDRESS or `auto`; None (this process) without one."""
    return RayEngine(ray) if ray else None


def concat(batches: Iterable[Batch], rows: int) -> Batch:
    """One dict of arrays from a run of batches of `rows` rows in all, each array filled in
    place as the batches come (never the batches and their concatenation at once)."""
    out: Batch = {}
    start = 0
    for batch in batches:
        count = 0
        for name, values in batch.items():
            values = np.asarray(values)
            if name not in out:
                out[name] = np.empty((rows, *values.shape[1:]), values.dtype)
            out[name][start:start + len(values)] = values
            count = len(values)
        start += count
    if start != rows:
        raise ValueError(f"batches held {start:,} rows, not {rows:,}")
    return out
