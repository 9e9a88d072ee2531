"""Colours of the map: distinct hues for coarse topics (finer topics take their parent's hue),
and the one grey of dimmed points (removed or filtered out) in tiles and in the report."""

from __future__ import annotations

import math

from atlas.schema import LEVEL, PARENT_ID, TOPIC_ID, X, Y

DIMMED = "#b4b8c0"


def topic_colors(topics: list[dict]) -> dict:
    """{"coarse": colour per coarse topic (by id), "topic": colour per topic id}, for the rows
    of topics.parquet (`topics`, in topic id order).

    Coarse topics are coloured in order of their label's angle around the map centre with
    colorcet's Glasbey palette (category10 first), whose consecutive colours are chosen to
    be as different as possible: neighbouring topics never share a hue.
    """
    import colorcet

    coarse = [t for t in topics if t[LEVEL] == 0]
    cx = sum(t[X] for t in coarse) / len(coarse)
    cy = sum(t[Y] for t in coarse) / len(coarse)
    by_angle = sorted(coarse, key=lambda t: math.atan2(t[Y] - cy, t[X] - cx))
    palette = [c for c in colorcet.palette["glasbey_category10"] if _saturated(c)]
    colour_of = {t[TOPIC_ID]: palette[i % len(palette)] for i, t in enumerate(by_angle)}
    ordered = [colour_of[t[TOPIC_ID]] for t in sorted(coarse, key=lambda t: t[TOPIC_ID])]
    per_topic = {}
    for t in topics:
        root = t
        while root[PARENT_ID] is not None:
            root = topics[root[PARENT_ID]]
        per_topic[t[TOPIC_ID]] = colour_of[root[TOPIC_ID]]
    return {"coarse": ordered, "topic": per_topic}


def _saturated(hex_colour: str) -> bool:
    """Not a grey, nor too pale or too dark to read on the light map background."""
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    return max(rgb) - min(rgb) > 60 and 60 < sum(rgb) / 3 < 200
