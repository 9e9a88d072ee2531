"""Human-readable summaries of a map directory (`atlas info`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from atlas.llm.models import naming_models
from atlas.mapdir import MapDir
from atlas.schema import LABEL, LEVEL, SIZE


def describe(path: Path, top: int = 8) -> str:
    """Counts, levels, biggest coarse topics, duplicates, models and stage timings."""
    mapdir = MapDir(path)
    m = mapdir.manifest()
    topics = mapdir.topics()
    dup = m["duplicates"]
    emb = m["embedder"]
    lines = [
        f"map        {mapdir.path}",
        f"source     {m['source']['path']} ({m['source']['format']}, {m['source']['bytes']:,} bytes)",
        f"records    {m['records']:,} ({m['empty_texts']:,} empty texts, "
        f"{m['invalid_utf8_records']:,} with non-UTF-8 bytes replaced)",
        f"text       {' + '.join(m['columns']['text'])}",
        f"embedder   {emb['name']} ({emb['dim']} dims; {emb['why']})"
        + (f"; {emb['truncated']:,} texts truncated to the model window" if emb.get("truncated") else ""),
        f"levels     {m['levels']}: topics per level {m['topics_per_level']}; "
        f"{m['outliers']:,} outliers joined their nearest topic",
        f"labels     {_labels(m.get('labels', {}), mapdir.labels_status())}",
        f"duplicates {dup['groups']:,} groups, {dup['records_in_groups']:,} records "
        f"({', '.join(f'{k} {v:,}' for k, v in dup['by_kind'].items())}); "
        f"{dup['removable']:,} removable, largest group {dup['largest_group']:,}",
        "",
        "largest coarse topics:",
    ]
    coarse = topics.filter(pc.equal(topics[LEVEL], 0)).sort_by([(SIZE, "descending")])
    for row in coarse.slice(0, top).to_pylist():
        lines.append(f"  {row[SIZE] / m['records']:6.1%}  {row[SIZE]:>8,}  {row[LABEL]}")
    lines += ["", "stages:"]
    for name, stage in m["stages"].items():
        rate = f"  {stage['records_per_s']:>12,.0f} records/s" if stage["seconds"] >= 0.01 else ""  # none for ~0 s
        lines.append(f"  {name:<10} {stage['seconds']:8.2f}s{rate}")
    lines.append(f"  {'total':<10} {m['total_seconds']:8.2f}s")
    return "\n".join(lines)


def _labels(info: dict, status: dict | None) -> str:
    if status and status["state"] != "done":
        return (f"keywords (c-TF-IDF) until {naming_models(status['model'], status.get('finest_model'))} "
                "has named every topic: "
                f"{status['done']:,} of {status['total']:,} named ({status['state']})")
    if info.get("method") != "llm":
        return "keywords (c-TF-IDF)"
    return (f"{naming_models(info['model'], info.get('finest_model'))} ({info['prompt_form']} prompt), "
            f"{info['seconds_per_topic']:.2f}s per topic, "
            f"{info.get('named_by_facts', 0):,} named by facts about their texts, "
            f"{info['fell_back']:,} fell back to keywords")
