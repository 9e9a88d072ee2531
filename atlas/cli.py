"""The `atlas` command: parse, call the library, report. Heavy imports happen inside commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from atlas.errors import AtlasError
from atlas.settings import ClusterSettings, EmbedSettings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "debian_packages.parquet"


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
@click.option("--id", "id_column", metavar="COL", help="Unique id column [default: `id` if present, else row numbers].")
@click.option("--format", "input_format", type=click.Choice(["parquet", "csv", "tsv", "jsonl"]),
              help="Input format [default: from the extension].")
@click.option("--embedder", default=EmbedSettings.embedder, show_default=True, metavar="NAME|PATH",
              help="minilm, static, auto (by size), or a local sentence-transformers folder.")
@click.option("--embeddings", "embeddings_column", metavar="COL",
              help="Use vectors from this column instead of embedding.")
@click.option("--min-cluster-size", type=int, help="Smallest fine topic [default: max(10, sqrt(N)/4)].")
@click.option("--seed", type=int, help="Random seed: the same seed gives the same map. Without one, UMAP and "
              "NN-descent use every core (about twice as fast on 2 cores) and maps differ slightly run to run.")
@click.option("--force", is_flag=True, help="Replace --out even if it holds a map of another source.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(source, text_columns, out, id_column, input_format, embedder, embeddings_column,
          min_cluster_size, seed, force, quiet) -> None:
    """Build a map directory from a parquet, CSV, TSV or JSONL file."""
    from atlas.pipeline.run import build as run_build
    from atlas.settings import BuildSettings

    settings = BuildSettings(
        text_columns=tuple(text_columns), id_column=id_column, input_format=input_format,
        embeddings_column=embeddings_column, seed=seed,
        embed=EmbedSettings(embedder=embedder),
        cluster=ClusterSettings(min_cluster_size=min_cluster_size),
    )
    run_build(source, out or Path(f"{source.stem}_map"), settings, force=force, quiet=quiet, log=_log)


@main.command()
@click.argument("map_dir", type=click.Path(path_type=Path))
def info(map_dir) -> None:
    """Counts, levels, topics, duplicates, models and stage timings of a map."""
    from atlas.report import describe

    click.echo(describe(map_dir))


@main.command()
@click.argument("map_dir", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (localhost only by default).")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the map in a web browser.")
def serve(map_dir, host, port, open_browser) -> None:
    """Serve a map in the browser: tiles, labels, records, search."""
    _serve(map_dir, host, port, open_browser)


def _serve(map_dir: Path, host: str, port: int, open_browser: bool) -> None:
    import socket
    import webbrowser

    import uvicorn

    from atlas.mapdir import MapDir
    from atlas.server.app import create_app

    MapDir(map_dir).manifest()  # a clear error before anything starts
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise AtlasError(f"port {port} on {host} is in use; pass another with --port") from None
    app = create_app(map_dir)
    url = f"http://{host}:{port}/"
    _log(f"serving {map_dir} at {url} (Ctrl-C stops)")
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


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
    from atlas.settings import BuildSettings

    if not SAMPLE.exists():
        raise AtlasError(f"the sample dataset is missing ({SAMPLE}); run Atlas from a clone of its repository")
    if rebuild or not MapDir(out).is_map():
        settings = BuildSettings(text_columns=("description",), id_column="package", seed=42)
        run_build(SAMPLE, out, settings, force=True, quiet=quiet, log=_log)
    else:
        _log(f"the sample map is already built in {out} (pass --rebuild to build it again)")
    click.echo(describe(out))
    if not no_serve:
        _serve(out, "127.0.0.1", port, open_browser=False)
