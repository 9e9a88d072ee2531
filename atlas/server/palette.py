"""Topic colours: distinct hues for coarse topics; finer topics take their parent's hue."""

from __future__ import annotations

import math


def topic_colors(data) -> dict:
    """{"coarse": colour per coarse topic (by id), "topic": colour per topic id}.

    Coarse topics are coloured in order of their label's angle around the map centre with
    colorcet's Glasbey palette (category10 first), whose consecutive colours are chosen to
    be as different as possible: neighbouring topics never share a hue.
    """
    import colorcet

    topics = data.topics
    coarse = [t for t in topics if t["level"] == 0]
    cx = sum(t["x"] for t in coarse) / len(coarse)
    cy = sum(t["y"] for t in coarse) / len(coarse)
    by_angle = sorted(coarse, key=lambda t: math.atan2(t["y"] - cy, t["x"] - cx))
    palette = [c for c in colorcet.palette["glasbey_category10"] if _saturated(c)]
    colour_of = {t["topic_id"]: palette[i % len(palette)] for i, t in enumerate(by_angle)}
    ordered = [colour_of[t["topic_id"]] for t in sorted(coarse, key=lambda t: t["topic_id"])]
    per_topic = {}
    for t in topics:
        root = t
        while root["parent_id"] is not None:
            root = topics[root["parent_id"]]
        per_topic[t["topic_id"]] = colour_of[root["topic_id"]]
    return {"coarse": ordered, "topic": per_topic}


def _saturated(hex_colour: str) -> bool:
    """Not a grey, nor too pale or too dark to read on the light map background."""
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    return max(rgb) - min(rgb) > 60 and 60 < sum(rgb) / 3 < 200
