"""Atlas from Python: build a map from a file or a table in memory, read it as DataFrames,
curate it and show it beside a notebook.

Every method calls the function the CLI and the server call: an edit made here lands in the
map's edit log, so `atlas edits`, the page and this object all see one state.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from atlas.curation import RESTORE_ALL, Curation, removal, select
from atlas.errors import AtlasError
from atlas.mapdir import MapDir, default_out
from atlas.schema import DESCRIPTION, KEYWORDS, LABEL, LABEL_SOURCE, LEVEL, MORTON, PARENT_ID, ROW, SIZE, TOPIC_ID
from atlas.settings import build_settings

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import IFrame

    from atlas.curation import Entry
    from atlas.query import MapData
    from atlas.server.serve import Background

DATA_TYPES = "a file path, a pandas or polars DataFrame, a pyarrow Table or a datasets.Dataset"


def build(data, text: str | Sequence[str], *, id: str | None = None, out: str | os.PathLike | None = None,
          force: bool = False, quiet: bool = False, ray: str | None = None, **settings) -> Map:
    """Build a map, as `atlas build` does, and open it.

    Parameters
    ----------
    data : str, os.PathLike, pandas.DataFrame, polars.DataFrame, pyarrow.Table or datasets.Dataset
        A parquet, CSV, TSV or JSONL file, or a table in memory. A table is written as a parquet
        file beside the map (``OUT.source.parquet``) and built from there: the map records
        that file and its hash, so building the same table again reuses its embeddings.
    text : str or sequence of str
        The text column; several are joined with newlines (``--text``).
    id : str, optional
        A unique id column (``--id``). Default: a column named ``id``, else row numbers.
    out : str or os.PathLike, optional
        The map directory. Default: ``STEM_map`` in the current directory for a file (as
        ``atlas build``), a new temporary directory for a table.
    force : bool, default False
        Replace `out` even when it holds a map of another source.
    quiet : bool, default False
        No progress bars or messages (they go to stderr).
    ray : str, optional
        Run the heavy stages (embedding, dedup's features, UMAP's placement beyond its fitted
        sample, the label model) on a Ray cluster (``--ray``): its address, or ``"auto"``.
    **settings
        Build settings by name, checked as the CLI checks them (`atlas.settings`): any option
        of ``atlas build`` (``embedder="static"``, ``labels="keywords"``, ``seed=42``,
        ``min_cluster_size=20``, ``llm="gemma3-270m"``), any field of a stage's settings
        (``near_threshold=0.8``, ``n_epochs=200``) or a whole stage
        (``label=LabelSettings(...)``).

    Returns
    -------
    Map
        The map, opened.

    Raises
    ------
    AtlasError
        An unknown or ill-typed setting (the message lists the allowed ones), data of another
        type, or anything ``atlas build`` refuses.

    Examples
    --------
    >>> m = atlas.build(df, text="prompt", out="prompts_map", embedder="static", seed=42)
    """
    from atlas.pipeline.engine import engine_for
    from atlas.pipeline.run import build as run_build

    settings = build_settings(text, **({} if id is None else {"id": id}), **settings)
    if isinstance(data, str | os.PathLike):
        source = Path(data)
        out = Path(out) if out is not None else default_out(source)
    else:
        table = as_table(data)
        out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="atlas-")) / "map"
        out.parent.mkdir(parents=True, exist_ok=True)
        source = out.parent / f"{out.name}.source.parquet"
        _write_source(table, source, out, force)
    log = (lambda _: None) if quiet else (lambda message: print(message, file=sys.stderr))
    built = run_build(source, out, settings, engine=engine_for(ray), force=force, quiet=quiet, log=log)
    return Map(built.path)


def open(path: str | os.PathLike) -> Map:
    """Open a map directory that ``atlas build`` or `atlas.build` wrote.

    Parameters
    ----------
    path : str or os.PathLike
        The map directory.

    Returns
    -------
    Map

    Raises
    ------
    AtlasError
        `path` is not a map, or one of another format version.
    """
    return Map(path)


def as_table(data) -> pa.Table:
    """A pyarrow Table of a pandas or polars DataFrame, a Table or a datasets.Dataset.

    Each library is imported only when `data` comes from it, so none is needed for the others.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table or datasets.Dataset

    Returns
    -------
    pyarrow.Table

    Raises
    ------
    AtlasError
        `data` is of another type, or its columns cannot be converted to Arrow.
    """
    if isinstance(data, pa.Table):
        return data
    library = type(data).__module__.partition(".")[0]
    if library == "datasets" and isinstance(data, dict):
        raise AtlasError(f"a DatasetDict holds several splits ({', '.join(data)}); pass one, e.g. data[split]")
    try:
        if library == "pandas" and hasattr(data, "columns"):
            return pa.Table.from_pandas(data, preserve_index=False)
        if library == "polars" and hasattr(data, "to_arrow"):
            return data.to_arrow()
        if library == "datasets" and hasattr(data, "with_format"):
            return data.with_format("arrow")[:]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise AtlasError(f"the {library} table cannot be converted to Arrow: {e}") from None
    raise AtlasError(f"data is {DATA_TYPES}, not {type(data).__module__}.{type(data).__name__}")


def _write_source(table: pa.Table, source: Path, out: Path, force: bool) -> None:
    """Write a table to build from as `source`; the source of a map at `out` stays until the
    table is known to be that same source (or `force`)."""
    import pyarrow.parquet as pq

    from atlas.mapdir import check_target, file_hash

    tmp = source.with_name(f".{source.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        check_target(out, file_hash(tmp), force)
        os.replace(tmp, source)
    finally:
        tmp.unlink(missing_ok=True)


class Map:
    """One map directory, opened: its tables as DataFrames, search, curation and the page.

    Parameters
    ----------
    path : str or os.PathLike
        The map directory.

    Notes
    -----
    The tables are read on first use, and again after the map is rebuilt. The edit log is
    read afresh by every call, so edits made by the CLI or the page show at once.
    """

    def __init__(self, path: str | os.PathLike):
        self._mapdir = MapDir(path)
        self._mapdir.manifest()  # a clear error when `path` is not a map
        self._loaded: tuple[MapData, Curation] | None = None
        self._server: Background | None = None

    @property
    def path(self) -> Path:
        """The map directory."""
        return self._mapdir.path

    def __repr__(self) -> str:
        return (f"<atlas.Map {str(self.path)!r}: {self.manifest['records']:,} records, "
                f"topics per level {self.manifest['topics_per_level']}>")

    @property
    def manifest(self) -> dict:
        """The map's manifest.json: counts, columns, settings, models and stage timings."""
        return self._mapdir.manifest()

    @property
    def _data(self) -> MapData:
        return self._load()[0]

    @property
    def _curation(self) -> Curation:
        return self._load()[1]

    def _load(self) -> tuple[MapData, Curation]:
        """The map's tables, read on first use and read again when the directory was rebuilt since."""
        from atlas.query import MapData

        if self._loaded is None or self._loaded[1].build_id != self._mapdir.build_id():
            data = MapData(self._mapdir)
            self._loaded = data, Curation.of(data)
        return self._loaded

    # ---- reading ----

    @property
    def topics(self) -> pd.DataFrame:
        """Every topic at every level, as stored in topics.parquet, plus `kept`.

        Returns
        -------
        pandas.DataFrame
            One row per topic: ``topic_id``, ``level`` (0 is coarsest), ``parent_id``,
            ``label``, ``description``, ``label_source``, ``keywords``, ``size`` (records) and
            ``kept`` (records not removed).
        """
        curation = self._curation
        table = curation.topics
        kept = ~curation.state().removed
        counts = sum(np.bincount(level[kept], minlength=table.num_rows) for level in self._data.levels)
        columns = [TOPIC_ID, LEVEL, PARENT_ID, LABEL, DESCRIPTION, LABEL_SOURCE, KEYWORDS, SIZE]
        return _atlas_pandas(table.select(columns).append_column("kept", pa.array(counts)))

    @property
    def points(self) -> pd.DataFrame:
        """Where each record lies on the map and what Atlas found about it, in input order.

        Returns
        -------
        pandas.DataFrame
            One row per record, aligned with `records`: ``id``, ``x``, ``y``, ``topic_0`` ..
            (the topic id per level), ``outlier``, ``text_len``, ``empty``, ``dup_group``,
            ``dup_kind``, ``dup_survivor``, and from the edit log ``removed`` and ``tags``.
        """
        points = self._curation.frame.points
        order = np.argsort(points.column(ROW).to_numpy(), kind="stable")
        state = self._curation.state()
        table = points.drop_columns([ROW, MORTON]).take(pa.array(order))
        table = table.append_column("removed", pa.array(state.removed[order]))
        return _atlas_pandas(table.append_column("tags", self._curation.tag_lists(order)))

    @property
    def records(self) -> pd.DataFrame:
        """The input records as read, every original column with ``id``, in input order.

        Returns
        -------
        pandas.DataFrame
        """
        return _pandas(self._data.records)

    def search(self, query: str, mode: str = "keyword", limit: int = 50) -> pd.DataFrame:
        """The records a search finds, best first, as the page's search box finds them.

        Parameters
        ----------
        query : str
            Words to look for.
        mode : {"keyword", "semantic"}, default "keyword"
            ``keyword``: full-text search, every word must match (the last may be a prefix).
            ``semantic``: the records nearest the query, embedded by the map's own embedder.
        limit : int, default 50
            At most this many records.

        Returns
        -------
        pandas.DataFrame
            ``id``, ``x``, ``y``, ``topics`` (ids per level), ``snippet`` and ``score``.
        """
        import pandas as pd

        return pd.DataFrame(self._data.search(query, mode, limit),
                            columns=["id", "x", "y", "topics", "snippet", "score"])

    def record(self, id: str) -> dict:
        """One record as the page shows it: text, columns, topic path, duplicate group.

        Parameters
        ----------
        id : str
            The record's id.

        Returns
        -------
        dict
        """
        try:
            return self._data.record(id)
        except LookupError:
            raise AtlasError(f"no record with id {id!r}") from None

    def neighbors(self, id: str, k: int = 10) -> pd.DataFrame:
        """The records nearest one record in embedding space.

        Parameters
        ----------
        id : str
            The record's id.
        k : int, default 10
            How many neighbours (at most the k the map was built with, less itself).

        Returns
        -------
        pandas.DataFrame
            ``id``, ``x``, ``y``, ``topics``, ``snippet`` and ``similarity`` (cosine), nearest first.
        """
        import pandas as pd

        try:
            found = self._data.record(id, k)["neighbors"]
        except LookupError:
            raise AtlasError(f"no record with id {id!r}") from None
        return pd.DataFrame(found, columns=["id", "x", "y", "topics", "snippet", "similarity"])

    def filter(self, where: str) -> pd.DataFrame:
        """The records a filter matches, removed ones included: what ``remove(where)`` would take.

        Parameters
        ----------
        where : str
            A filter (docs/FILTERS.md), e.g. ``"text_len < 20 and dup = removable"``.

        Returns
        -------
        pandas.DataFrame
            The matching rows of `records`, with their index (the input row).
        """
        rows = self._curation.frame.points.column(ROW).to_numpy()
        matched = np.sort(rows[self._curation.frame.mask(where)])
        return _pandas(self._data.records.take(pa.array(matched))).set_axis(matched)

    # ---- curation: each call is one entry in the edit log, as `atlas remove` etc. write ----

    def remove(self, where: str | None = None, *, topic: int | Sequence[int] = (), duplicates: bool = False,
               keep: str = "longest", prefer: Sequence[str] = (), near_threshold: float | None = None,
               semantic_threshold: float | None = None, kinds: Sequence[str] | None = None,
               quota: dict | None = None, reason: str = "") -> Entry:
        """Remove records: those a filter or topics choose, the duplicates, or a quota's excess.

        Give exactly one of `where` / `topic`, ``duplicates=True`` or `quota`, as with
        ``atlas remove``. Undo with `undo`.

        Parameters
        ----------
        where : str, optional
            A filter (docs/FILTERS.md).
        topic : int or sequence of int, optional
            Topic ids at any level (their subtopics too).
        duplicates : bool, default False
            Every record paired directly with a record kept in its place (never through a
            chain of pairs).
        keep : str, default "longest"
            With `duplicates`: the survivor rule, ``longest``, ``shortest``, ``first``,
            ``max:COL`` or ``min:COL``: which records are kept first.
        prefer : sequence of str, optional
            With `duplicates`: record ids that survive their group whatever the rule.
        near_threshold, semantic_threshold : float, optional
            With `duplicates`: stricter thresholds than the build's.
        kinds : sequence of str, optional
            With `duplicates`: the kinds of pair that remove (default exact, near, semantic;
            add ``template`` to remove template siblings too).
        quota : dict, optional
            Balance topics: ``{"cap": N}``, ``{"cap_pct": P}`` or ``{"target": T}``, with
            optional ``level`` (default 0) and ``seed``; see `quota_preview`.
        reason : str, optional
            Why, kept in the log and the report.

        Returns
        -------
        atlas.edits.Entry
            The log entry: ``seq``, ``count`` (records chosen) and the predicate.
        """
        dups = dict(keep=keep, near_threshold=near_threshold, semantic_threshold=semantic_threshold,
                    prefer=list(prefer), kinds=list(kinds) if kinds else None) if duplicates else None
        return self._edit("remove", removal(_topics(topic), where, duplicates=dups, quota=quota), reason=reason)

    def tag(self, name: str, where: str | None = None, *, topic: int | Sequence[int] = (),
            reason: str = "") -> Entry:
        """Tag records with `name` (then filter them with ``tag = "name"``).

        Parameters
        ----------
        name : str
            The tag.
        where : str, optional
            A filter choosing the records.
        topic : int or sequence of int, optional
            Topic ids choosing the records instead of `where`.
        reason : str, optional
            Why, kept in the log.

        Returns
        -------
        atlas.edits.Entry
        """
        return self._edit("tag", select(_topics(topic), where), tag=name, reason=reason)

    def untag(self, name: str, where: str | None = None, *, topic: int | Sequence[int] = (),
              reason: str = "") -> Entry:
        """Take the tag `name` off records; the parameters are those of `tag`.

        Returns
        -------
        atlas.edits.Entry
        """
        return self._edit("untag", select(_topics(topic), where), tag=name, reason=reason)

    def restore(self, where: str | None = None, *, topic: int | Sequence[int] = (), all: bool = False,
                reason: str = "") -> Entry:
        """Bring removed records back.

        Parameters
        ----------
        where : str, optional
            A filter choosing the records.
        topic : int or sequence of int, optional
            Topic ids choosing the records instead of `where`.
        all : bool, default False
            Every removed record.
        reason : str, optional
            Why, kept in the log.

        Returns
        -------
        atlas.edits.Entry
        """
        return self._edit("restore", RESTORE_ALL if all else select(_topics(topic), where), reason=reason)

    def undo(self) -> Entry:
        """Step back over the latest edit in force (from here, the CLI or the page).

        Returns
        -------
        atlas.edits.Entry
            The undo entry; its ``target`` is the edit stepped over.

        Raises
        ------
        AtlasError
            There is nothing to undo.
        """
        return self._curation.undo()

    def redo(self) -> Entry:
        """Re-apply the latest undone edit.

        Returns
        -------
        atlas.edits.Entry

        Raises
        ------
        AtlasError
            There is nothing to redo.
        """
        return self._curation.redo()

    def _edit(self, action: str, predicate: dict, *, tag: str | None = None, reason: str = "") -> Entry:
        return self._curation.edit(action, predicate, tag=tag, reason=reason)

    @property
    def edits(self) -> pd.DataFrame:
        """The edit log, oldest first, as ``atlas edits`` lists it.

        Returns
        -------
        pandas.DataFrame
            ``seq``, ``created``, ``action``, ``tag``, ``count``, ``target`` (undo/redo: the edit
            stepped over), ``reason``, ``predicate`` and ``in_force`` (an edit not undone).
        """
        import pandas as pd

        entries, in_force, _ = self._curation.history()
        active = {e.seq for e in in_force}
        columns = ["seq", "created", "action", "tag", "count", "target", "reason", "predicate"]
        rows = [[getattr(e, c) for c in columns] + [e.seq in active] for e in entries]
        return pd.DataFrame(rows, columns=[*columns, "in_force"])

    def quota_preview(self, **quota) -> pd.DataFrame:
        """Per topic, the kept records and shares before and after a quota; removes nothing.

        Parameters
        ----------
        **quota
            ``cap``, ``cap_pct`` or ``target``, with optional ``level`` and ``seed``, as for
            ``remove(quota=...)``.

        Returns
        -------
        pandas.DataFrame
            ``topic_id``, ``label``, ``before``, ``share_before``, ``after``, ``share_after``.
        """
        import pandas as pd

        return pd.DataFrame(self._curation.quota_preview(**quota))

    # ---- output ----

    def export(self, path: str | os.PathLike | None = None, *, extras: Sequence[str] = (),
               include_removed: bool = False, where: str | None = None,
               arrow: bool = False) -> int | pd.DataFrame | pa.Table:
        """The kept records with their original columns and types, as ``atlas export`` writes them.

        Parameters
        ----------
        path : str or os.PathLike, optional
            A parquet file to write (atomically). Without one, the table is returned.
        extras : sequence of str, optional
            Extra columns named ``atlas_*``: ``topic_labels``, ``dup``, ``tags`` (``--with``).
        include_removed : bool, default False
            Removed records too.
        where : str, optional
            Only the records matching this filter.
        arrow : bool, default False
            Without `path`: return a pyarrow Table instead of a pandas DataFrame.

        Returns
        -------
        int, pandas.DataFrame or pyarrow.Table
            With `path`, the number of rows written; else the table.
        """
        options = dict(extras=tuple(extras), include_removed=include_removed, where=where)
        if path is not None:
            return self._curation.export(path, **options)
        table = self._curation.export_table(**options)
        return table if arrow else _pandas(table)

    def report(self, path: str | os.PathLike) -> dict:
        """Write the before/after curation report (HTML), as ``atlas report`` does.

        Parameters
        ----------
        path : str or os.PathLike
            The HTML file to write.

        Returns
        -------
        dict
            What the report shows, as data: counts, removals by reason, topic shares.
        """
        return self._curation.report(path)

    # ---- the page ----

    def serve(self, port: int | None = None) -> str:
        """Serve the map's page on 127.0.0.1 from a background thread, as ``atlas serve`` does.

        The security model is that of ``atlas serve`` on loopback (docs/SECURITY.md), except
        that notebook pages on this machine (Jupyter, VS Code) may show the page in a frame.
        The server stops with `stop`, or when the Python process (the notebook's kernel) ends.
        Calling `serve` again returns the running server's URL.

        Parameters
        ----------
        port : int, optional
            The port; default: a free one.

        Returns
        -------
        str
            The page's URL.

        Raises
        ------
        AtlasError
            `port` is in use.
        """
        from atlas.server.serve import Background

        if self._server is not None and self._server.running:
            if port is None or self._server.url.endswith(f":{port}/"):
                return self._server.url
            self.stop()
        self._server = Background(self.path, port or 0)
        return self._server.url

    def stop(self) -> None:
        """Stop the server `serve` started, if any."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def show(self, width: str | int = "100%", height: int = 650) -> IFrame:
        """The live page in an IFrame, for a Jupyter notebook (starts `serve` if needed).

        Parameters
        ----------
        width : str or int, default "100%"
        height : int, default 650

        Returns
        -------
        IPython.display.IFrame
            Shown when it is a cell's last value (else pass it to ``IPython.display.display``).

        Raises
        ------
        AtlasError
            IPython is not installed.
        """
        try:
            from IPython.display import IFrame
        except ImportError:
            raise AtlasError("Map.show needs IPython (pip install ipython); or open the URL Map.serve() returns "
                             "in a browser") from None
        return IFrame(self.serve(), width=width, height=height)


def _topics(topic: int | Sequence[int]) -> tuple[int, ...]:
    return (topic,) if isinstance(topic, int | np.integer) else tuple(topic)


def _pandas(table: pa.Table) -> pd.DataFrame:
    """A DataFrame of a table of input records; a DataFrame's own index is not carried over."""
    return table.to_pandas(ignore_metadata=True)


def _atlas_pandas(table: pa.Table) -> pd.DataFrame:
    """A DataFrame of one of Atlas's tables: ids with gaps (`parent_id`, `dup_group`) stay integers."""
    import pandas as pd

    return table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}.get)
