"""`atlas topics`: the topic tree with sizes, shares and links between neighbouring topics."""

import json

from click.testing import CliRunner

from atlas.cli import main
from atlas.ontology import topic_tree


def test_tree_covers_every_record_and_links_both_ways(small_map):
    tree = topic_tree(small_map)
    assert sum(node["size"] for node in tree) == 400
    assert abs(sum(node["share"] for node in tree) - 1) < 1e-3
    for node in tree:
        assert sum(child["size"] for child in node["children"]) == node["size"]
    nodes = {n["id"]: n for root in tree for n in [root, *root["children"]]}
    links = [(a, r["id"]) for a, n in nodes.items() for r in n["related"]]
    assert links, "neighbouring topics should be linked"
    for a, b in links:
        assert nodes[a]["level"] == nodes[b]["level"]


def test_topics_command_prints_markdown_and_json(small_map):
    runner = CliRunner()
    md = runner.invoke(main, ["topics", str(small_map.path)])
    assert md.exit_code == 0 and md.output.startswith("- **")
    parsed = json.loads(runner.invoke(main, ["topics", str(small_map.path), "--format", "json"]).output)
    assert {"label", "description", "size", "share", "related", "children"} <= parsed[0].keys()
