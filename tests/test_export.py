"""Export fidelity: the input's columns and types, the kept rows in input order, atomic writes."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.curation import Curation
from atlas.errors import AtlasError
from atlas.export import export, parse_extras


def test_export_keeps_columns_types_and_order(curated, small_table, tmp_path):
    curation = Curation(curated)
    curation.edit("remove", {"select": [{"where": "section = 'perl'"}]})
    curation.edit("remove", {"duplicates": {"keep": "longest", "kinds": ["exact", "near", "semantic", "template"]}})
    out = tmp_path / "clean.parquet"
    rows = export(curated.path, out, extras=())
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == small_table.schema.remove_metadata()
    assert rows == table.num_rows == int(curation.kept().sum())
    expected = small_table.filter(pa.array(~curation.state().removed[_points_of_rows(curation)]))
    assert table.equals(expected)  # same values, input order
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.parquet", "map"]  # no temp file left


def _points_of_rows(curation):
    """Position in points order of each input row."""
    rows = curation.frame.points.column("row").to_numpy()
    position = rows.copy()
    position[rows] = range(len(rows))
    return position


def test_export_where_extras_and_removed(curated, tmp_path):
    curation = Curation(curated)
    curation.edit("tag", {"select": [{"topic": 1}]}, tag="one")
    curation.edit("tag", {"select": [{"topic": 1}]}, tag="also")
    curation.edit("remove", {"select": [{"where": "topic = 1 and text_len < 200"}]})
    out = tmp_path / "extras.parquet"
    result = CliRunner().invoke(main, ["export", str(curated.path), "--out", str(out),
                                       "--with", "topic_labels,dup,tags", "--where", "topic = 1"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert result.output.strip() == f"wrote {table.num_rows:,} records to {out}"
    assert table.num_rows == int(curation.kept("topic = 1").sum()) > 0
    assert table.column("atlas_tags").to_pylist() == [["also", "one"]] * table.num_rows
    assert table.schema.field("atlas_tags").type == pa.list_(pa.string())
    assert set(table.column("atlas_topic_0").to_pylist()) == {curation.labels()[1]}
    assert {"atlas_topic_1", "atlas_dup_group", "atlas_dup_kind", "atlas_dup_survivor"} <= set(table.column_names)
    everything = export(curation, tmp_path / "all.parquet", extras=(), include_removed=True, where="topic = 1")
    assert everything == int(curation.frame.mask("topic = 1").sum()) > table.num_rows


def test_export_errors(curated, tmp_path):
    with pytest.raises(AtlasError, match="unknown extra"):
        export(curated.path, tmp_path / "x.parquet", extras=("labels",))
    with pytest.raises(AtlasError, match="does not exist"):
        export(curated.path, tmp_path / "missing" / "x.parquet")
    with pytest.raises(AtlasError, match="filter"):
        export(curated.path, tmp_path / "x.parquet", where="nope = 1")
    assert list(tmp_path.iterdir()) == [curated.path]


def test_with_is_parsed_once_for_cli_and_server():
    assert parse_extras(" dup, tags,,") == ("dup", "tags")
    assert parse_extras("") == ()
    with pytest.raises(AtlasError, match="unknown extra.*labels; choose from topic_labels, dup, tags"):
        parse_extras("dup,labels")
