"""Topic colours: distinct hues for coarse topics; finer topics take their parent's hue."""

from __future__ import annotations

# Glasbey-style categorical colours (well separated, readable on a light background).
COLORS = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#393b79", "#ad494a", "#637939", "#e7ba52", "#7b4173", "#3182bd", "#e6550d",
    "#31a354", "#756bb1", "#636363", "#843c39", "#d6616b", "#8ca252", "#de9ed6", "#6baed6",
    "#fd8d3c", "#74c476", "#9e9ac8", "#969696", "#b5cf6b", "#cedb9c",
]


def topic_colors(data) -> dict:
    """{"coarse": colour per coarse topic (by id), "topic": colour per topic id}.

    Neighbouring coarse topics get colours far apart in the list: topics are coloured in
    order of their label's angle around the map centre, stepping through the palette.
    """
    import math

    topics = data.topics
    coarse = [t for t in topics if t["level"] == 0]
    cx = sum(t["x"] for t in coarse) / len(coarse)
    cy = sum(t["y"] for t in coarse) / len(coarse)
    by_angle = sorted(coarse, key=lambda t: math.atan2(t["y"] - cy, t["x"] - cx))
    # 7 is coprime with 30, so up to 30 topics all get different colours, 7 apart for neighbours.
    colour_of = {t["topic_id"]: COLORS[(i * 7) % len(COLORS)] for i, t in enumerate(by_angle)}
    ordered = [colour_of[t["topic_id"]] for t in sorted(coarse, key=lambda t: t["topic_id"])]
    per_topic = {}
    for t in topics:
        root = t
        while root["parent_id"] is not None:
            root = topics[root["parent_id"]]
        per_topic[t["topic_id"]] = colour_of[root["topic_id"]]
    return {"coarse": ordered, "topic": per_topic}
