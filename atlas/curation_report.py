"""The before/after curation report (`atlas report`): one self-contained HTML file.

Counts of records and characters, removals by reason and by action, duplicates removed by
kind, topic shares per level, and the map drawn before and after (removed points dimmed) as
two embedded PNGs. Every dataset text (labels, reasons) goes through html.escape.
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
    return [{"topic_id": int(t), "label": labels.get(int(t), ""),
             "before": int(before[t]), "share_before": before[t] / max(before.sum(), 1),
             "after": int(after[t]), "share_after": after[t] / max(after.sum(), 1)}
            for t in np.argsort(-before, kind="stable") if before[t]]


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
    """The report as HTML: string formatting only, every text escaped."""
    before, after = (base64.b64encode(png).decode() for png in images)
    records, chars = data["records"], data["characters"]
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
        "<h2>Removals by reason</h2>", _table(["reason", "records"], list(data["by_reason"].items())),
        "<h2>Removals by action</h2>", _table(["action", "records"], list(data["by_action"].items())),
        "<h2>Duplicates removed by kind</h2>",
        _table(["kind", "records"], list(data["duplicates_removed"].items())),
    ]
    for level, topics in enumerate(data["levels"]):
        sections += [f"<h2>Topic shares, level {level}</h2>", _table(
            ["topic", "label", "before", "share", "after", "share"],
            [[t["topic_id"], t["label"], t["before"], f"{t['share_before']:.1%}", t["after"],
              f"{t['share_after']:.1%}"] for t in topics])]
    return PAGE.format(body="\n".join(sections))


def _table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return f'<td class="n">{value:,}</td>' if isinstance(value, int) else f"<td>{escape(str(value))}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows) or \
        f'<tr><td colspan="{len(header)}">none</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Atlas curation report</title>
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
