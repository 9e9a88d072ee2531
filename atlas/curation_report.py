"""The before/after curation report (`atlas report`): one self-contained HTML file.

Counts of records and characters, the map drawn before and after (removed points dimmed) as
two datashader PNGs, the log of removals, and interactive Bokeh charts: removals by reason and
by action, duplicates removed by kind, text lengths before and after, topic shares before and
after per level. BokehJS is inlined (no network). Every dataset text (labels, reasons) goes
through html.escape in the page; in the charts it is data, which Bokeh escapes and draws as text.
"""

from __future__ import annotations

import base64
import io
import os
from collections import Counter
from html import escape
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from atlas.curation import Curation
from atlas.export import write_atomic
from atlas.palette import DIMMED, topic_colors
from atlas.pipeline.dedup import KINDS
from atlas.schema import DUP_KIND, TEXT_LEN, X, Y

IMAGE_SIZE = 600
CHART_WIDTH = 900
TOP_TOPICS = 30  # topics drawn per level, largest first
BEFORE, AFTER = 0.35, 0.9  # bar alpha


def summary(curation: Curation) -> dict:
    """Everything the report shows, as plain data (the server can return it as JSON)."""
    state = curation.state()
    kept = ~state.removed
    points = curation.frame.points
    text_len = points.column(TEXT_LEN).to_numpy().astype(np.int64)
    entries = {e.seq: e for e in curation.log.entries()}
    by_edit = Counter(state.removed_by[state.removed].tolist())
    removals = [{"seq": seq, "action": describe(entries[seq].predicate), "reason": entries[seq].reason,
                 "records": count} for seq, count in sorted(by_edit.items())]
    dup_kind = pc.fill_null(points.column(DUP_KIND), "").to_numpy(zero_copy_only=False)
    return {
        "map": str(curation.mapdir.path),
        "records": {"before": len(curation), "after": int(kept.sum())},
        "characters": {"before": int(text_len.sum()), "after": int(text_len[kept].sum())},
        "removals": removals,
        "by_reason": _totals(removals, "reason"),
        "by_action": _totals(removals, "action"),
        "duplicates_removed": {kind: int((state.removed & (dup_kind == kind)).sum()) for kind in KINDS[1:]},
        "text_length": length_histogram(text_len, kept),
        "levels": [topic_shares(curation, level, kept) for level in range(curation.manifest["levels"])],
    }


def describe(predicate: dict | None) -> str:
    """A short name for how an edit chose its records: lasso, filter, duplicates (longest)..."""
    if not predicate:
        return "ids"
    (kind, args), = predicate.items()
    if kind == "select":
        names = {"polygon": "lasso", "where": "filter"}
        return " + ".join(dict.fromkeys(names.get(k, k) for step in args for k in step if k != "op"))
    if kind == "duplicates":
        return f"duplicates (keep {args.get('keep', 'longest')})"
    if kind == "quota":
        return "quota (" + ", ".join(f"{k}={v}" for k, v in sorted(args.items()) if v is not None) + ")"
    return kind


def _totals(removals: list[dict], key: str) -> dict[str, int]:
    totals: Counter = Counter()
    for removal in removals:
        totals[removal[key] or "(no reason)"] += removal["records"]
    return dict(totals.most_common())


def topic_shares(curation: Curation, level: int, kept: np.ndarray) -> list[dict]:
    """Per topic of `level`, largest first: label, records and share before and after."""
    topic = curation.topic(level)
    size = int(topic.max()) + 1
    before, after = np.bincount(topic, minlength=size), np.bincount(topic[kept], minlength=size)
    labels = curation.labels()
    colors = topic_colors(curation.topics.to_pylist())["topic"]
    return [{"topic_id": int(t), "label": labels.get(int(t), ""), "color": colors[int(t)],
             "before": int(before[t]), "share_before": before[t] / max(before.sum(), 1),
             "after": int(after[t]), "share_after": after[t] / max(after.sum(), 1)}
            for t in np.argsort(-before, kind="stable") if before[t]]


def length_histogram(text_len: np.ndarray, kept: np.ndarray) -> dict:
    """Records per text-length bin, before and after: bins [edges[i], edges[i + 1]) on the
    steps 0, 1, 2, 4, 8... characters, from the shortest text's bin to the longest's."""
    top = int(text_len.max()) + 1 if len(text_len) else 1
    edges = np.r_[0, 2 ** np.arange(int(np.ceil(np.log2(top))) + 1)]
    before, after = (np.histogram(text_len[rows], bins=edges)[0] for rows in (slice(None), kept))
    first = int(np.searchsorted(edges, text_len.min(), side="right")) - 1 if len(text_len) else 0
    return {"edges": edges[first:].tolist(), "before": before[first:].tolist(), "after": after[first:].tolist()}


def map_images(curation: Curation, removed: np.ndarray) -> tuple[bytes, bytes]:
    """PNG bytes of the map before (every point) and after (removed points dimmed grey)."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    points = curation.frame.points
    colors = topic_colors(curation.topics.to_pylist())["coarse"]
    frame = pd.DataFrame({"x": points.column(X).to_numpy(), "y": points.column(Y).to_numpy(),
                          "topic": pd.Categorical.from_codes(curation.topic(0),
                                                             categories=[str(i) for i in range(len(colors))])})
    x0, y0, size = curation.manifest["world"]
    canvas = ds.Canvas(plot_width=IMAGE_SIZE, plot_height=IMAGE_SIZE, x_range=(x0, x0 + size),
                       y_range=(y0, y0 + size))
    key = {str(i): c for i, c in enumerate(colors)}

    def draw(rows: pd.DataFrame):
        return tf.shade(canvas.points(rows, "x", "y", agg=ds.count_cat("topic")), color_key=key, how="log",
                        min_alpha=200)

    dimmed = tf.shade(canvas.points(frame[removed], "x", "y"), cmap=[DIMMED, DIMMED], min_alpha=150)
    after = tf.stack(dimmed, draw(frame[~removed]))
    return tuple(_png(tf.set_background(tf.spread(image, px=1), "white")) for image in (draw(frame), after))


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.to_pil().save(buffer, format="PNG")
    return buffer.getvalue()


def render(data: dict, images: tuple[bytes, bytes]) -> str:
    """The report as HTML: string formatting for the page, every text escaped; the charts are
    Bokeh documents embedded with BokehJS inlined."""
    from bokeh.embed import components
    from bokeh.resources import Resources

    before, after = (base64.b64encode(png).decode() for png in images)
    records, chars = data["records"], data["characters"]
    plots = charts(data)
    drawn = {str(i): plot for i, (_, plot) in enumerate(plots) if plot is not None}
    script, divs = components(drawn)
    sections = [
        f"<h1>Curation report: {escape(data['map'])}</h1>",
        _table(["", "before", "after", "removed"], [
            ["records", records["before"], records["after"], records["before"] - records["after"]],
            ["characters", chars["before"], chars["after"], chars["before"] - chars["after"]]]),
        '<div class="maps"><figure><img alt="map before" src="data:image/png;base64,' + before
        + '"><figcaption>before</figcaption></figure><figure><img alt="map after" '
        'src="data:image/png;base64,' + after + '"><figcaption>after (removed points grey)</figcaption></figure></div>',
        "<h2>Removals by edit</h2>",
        _table(["edit", "action", "reason", "records"],
               [[r["seq"], r["action"], r["reason"], r["records"]] for r in data["removals"]]),
    ]
    for i, (heading, plot) in enumerate(plots):
        sections += [f"<h2>{escape(heading)}</h2>", divs[str(i)] if plot is not None else "<p>none</p>"]
    bokeh_js = Resources(mode="inline", components=["bokeh"]).render_js()
    return PAGE.format(head=bokeh_js + script, body="\n".join(sections))


def charts(data: dict) -> list[tuple[str, object | None]]:
    """(heading, Bokeh figure) per chart, in page order; None where there is nothing to draw."""
    plots = [("Removals by reason", _bars(data["by_reason"], "reason")),
             ("Removals by action", _bars(data["by_action"], "action")),
             ("Duplicates removed by kind", _bars(data["duplicates_removed"], "kind")),
             ("Text length in characters, before and after", _length_chart(data["text_length"]))]
    for level, topics in enumerate(data["levels"]):
        shown = topics[:TOP_TOPICS]
        more = f" (the largest {len(shown)} of {len(topics)})" if len(topics) > len(shown) else ""
        plots.append((f"Topic shares, level {level}{more}: light before, dark after", _share_chart(shown)))
    return plots


def _figure(**options):
    from bokeh.plotting import figure

    plot = figure(width=CHART_WIDTH, tools="pan,wheel_zoom,reset,save", toolbar_location="right", **options)
    plot.grid.grid_line_alpha = 0.4
    plot.outline_line_color = None
    return plot


def _bars(counts: dict[str, int], what: str):
    """Horizontal bars of records per name (a reason, an action...), the largest on top."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter

    if not any(counts.values()):
        return None
    names = list(counts)
    source = ColumnDataSource({"name": names, "records": list(counts.values())})
    plot = _figure(y_range=names[::-1], height=80 + 30 * len(names), x_axis_label="records")
    plot.hbar(y="name", right="records", height=0.7, source=source, color="#4c72b0")
    plot.x_range.start = 0
    plot.xaxis.formatter = NumeralTickFormatter(format="0,0")
    plot.add_tools(HoverTool(tooltips=[(what, "@name"), ("records", "@records{0,0}")]))
    return plot


def _length_chart(histogram: dict):
    """Records per length bin, before (light) and after (dark), side by side."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
    from bokeh.transform import dodge

    edges = histogram["edges"]
    bins = [str(lo) if hi == lo + 1 else f"{lo}–{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
    source = ColumnDataSource({"bin": bins, "before": histogram["before"], "after": histogram["after"]})
    plot = _figure(x_range=bins, height=320, x_axis_label="characters", y_axis_label="records")
    for column, alpha, shift in (("before", BEFORE, -0.2), ("after", AFTER, 0.2)):
        plot.vbar(x=dodge("bin", shift, range=plot.x_range), top=column, width=0.38, source=source,
                  color="#4c72b0", alpha=alpha, legend_label=column)
    plot.y_range.start = 0
    plot.yaxis.formatter = NumeralTickFormatter(format="0,0")
    plot.xaxis.major_label_orientation = 0.8
    plot.legend.location = "top_left"
    plot.add_tools(HoverTool(tooltips=[("characters", "@bin"), ("before", "@before{0,0}"),
                                       ("after", "@after{0,0}")]))
    return plot


def _share_chart(topics: list[dict]):
    """Each topic's share of the records before (light) and after (dark), in its map colour."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
    from bokeh.transform import dodge

    names = [f"{t['topic_id']}: {_short(t['label'])}" for t in topics]
    source = ColumnDataSource({
        "name": names, "label": [t["label"] for t in topics], "color": [t["color"] for t in topics],
        **{key: [t[key] for t in topics] for key in ("before", "after", "share_before", "share_after")}})
    plot = _figure(y_range=names[::-1], height=80 + 30 * len(names), x_axis_label="share of the records")
    for column, alpha, shift in (("share_before", BEFORE, 0.18), ("share_after", AFTER, -0.18)):
        plot.hbar(y=dodge("name", shift, range=plot.y_range), right=column, height=0.34, source=source,
                  color="color", alpha=alpha)
    plot.x_range.start = 0
    plot.xaxis.formatter = NumeralTickFormatter(format="0.0%")
    plot.add_tools(HoverTool(tooltips=[("topic", "@name"), ("label", "@label"),
                                       ("before", "@before{0,0} (@share_before{0.0%})"),
                                       ("after", "@after{0,0} (@share_after{0.0%})")]))
    return plot


def _short(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return f'<td class="n">{value:,}</td>' if isinstance(value, int) else f"<td>{escape(str(value))}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows) or \
        f'<tr><td colspan="{len(header)}">none</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Atlas curation report</title>
{head}
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.maps {{ display: flex; gap: 1em; flex-wrap: wrap; }}
figure {{ margin: 0; }} img {{ border: 1px solid #ddd; width: {size}px; max-width: 100%; }}
</style></head><body>
{body}
</body></html>
""".replace("{size}", str(IMAGE_SIZE))


def html(curation: Curation) -> str:
    """The whole report of the map's current edits, as HTML."""
    return render(summary(curation), map_images(curation, curation.state().removed))


def report(mapdir: str | os.PathLike | Curation, out: str | os.PathLike) -> dict:
    """Write the HTML report to `out` (atomically); returns its summary data."""
    curation = mapdir if isinstance(mapdir, Curation) else Curation(mapdir)
    data = summary(curation)
    page = render(data, map_images(curation, curation.state().removed))
    write_atomic(Path(out), lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return data
