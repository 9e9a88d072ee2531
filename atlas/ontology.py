"""The topic tree as an ontology: labels, descriptions, sizes, shares, and links between topics
whose records are each other's nearest neighbours (`atlas topics MAP`)."""

from __future__ import annotations

import json

import numpy as np

from atlas.mapdir import MapDir
from atlas.schema import DESCRIPTION, KEYWORDS, LABEL, LABEL_SOURCE, LEVEL, PARENT_ID, SIZE, TOPIC_ID, topic_columns

MIN_LINK = 0.02  # share of a pair's neighbour edges that cross between them
LINKS_SHOWN = 3


def topic_tree(mapdir: MapDir) -> list[dict]:
    """Level-0 topics, each with its `children` nested, largest first."""
    manifest = mapdir.manifest()
    topics = mapdir.topics().to_pylist()
    total = manifest["records"]
    neighbors, _ = mapdir.neighbors()
    columns = topic_columns(manifest["levels"])
    points = mapdir.points(columns)
    related = {}
    for column in columns:
        related.update(_links(points.column(column).to_numpy(), neighbors, len(topics)))
    nodes = {t[TOPIC_ID]: {
        "id": t[TOPIC_ID], "level": t[LEVEL], "label": t[LABEL], "description": t[DESCRIPTION],
        "label_source": t[LABEL_SOURCE], "size": t[SIZE], "share": round(t[SIZE] / total, 4),
        "keywords": t[KEYWORDS][:5],
        "related": [{"id": o, "label": topics[o][LABEL], "strength": s} for o, s in related.get(t[TOPIC_ID], [])],
        "children": [],
    } for t in topics}
    roots = []
    for t in sorted(topics, key=lambda t: -t[SIZE]):
        (nodes[t[PARENT_ID]]["children"] if t[PARENT_ID] is not None else roots).append(nodes[t[TOPIC_ID]])
    return roots


def _links(topic: np.ndarray, neighbors: np.ndarray, n_topics: int) -> dict[int, list[tuple[int, float]]]:
    """Per topic: the topics its records' neighbours fall in most, when both directions link."""
    k = neighbors.shape[1] - 1
    found = np.asarray(neighbors[:, 1:]).ravel()
    src = np.repeat(topic, k).astype(np.int64)
    dst = topic[found].astype(np.int64)
    cross = (src != dst) & (found >= 0)  # -1: NN-descent found no more neighbours
    pairs, counts = np.unique(src[cross] * n_topics + dst[cross], return_counts=True)
    edges = dict(zip(pairs.tolist(), counts.tolist()))
    sizes = np.bincount(topic, minlength=n_topics)
    links: dict[int, list[tuple[int, float]]] = {}
    for code, count in edges.items():
        a, b = divmod(code, n_topics)
        back = edges.get(b * n_topics + a, 0)
        strength = (count + back) / (k * (sizes[a] + sizes[b]))
        if back and strength >= MIN_LINK:
            links.setdefault(a, []).append((b, round(float(strength), 4)))
    return {a: sorted(found, key=lambda x: -x[1])[:LINKS_SHOWN] for a, found in links.items()}


def as_json(tree: list[dict]) -> str:
    return json.dumps(tree, indent=2, ensure_ascii=False)


def as_markdown(tree: list[dict]) -> str:
    lines: list[str] = []

    def walk(node: dict, depth: int) -> None:
        related = "; ".join(f"{r['label']} (#{r['id']})" for r in node["related"])
        lines.append(f"{'  ' * depth}- **{node['label']}** (#{node['id']}, {node['size']:,} records, "
                     f"{node['share']:.1%}): {node['description']}" + (f" Related: {related}." if related else ""))
        for child in node["children"]:
            walk(child, depth + 1)

    for root in tree:
        walk(root, 0)
    return "\n".join(lines)
