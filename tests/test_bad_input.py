"""`atlas build` on hostile and broken input files: each case gets its exact one-line error, or
builds and keeps what it should; a failed build leaves nothing behind (no map, no .partial)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.llm.models import CATALOGUE
from atlas.mapdir import MapDir

BUILD = ["--embedder", "static", "--labels", "keywords", "--seed", "1", "--quiet"]


def descriptions(small_table, n=40):
    return small_table.column("description").to_pylist()[:n]


def jsonl(rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def build(tmp_path, name, content, *options):
    """Run `atlas build` on a file holding `content` (None: no file; a dict: a directory)."""
    source = tmp_path / name
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.mkdir()
    out = tmp_path / "map"
    result = CliRunner().invoke(main, ["build", str(source), "--out", str(out), *BUILD, *options])
    return result, source, out


def assert_nothing_written(tmp_path, source):
    assert sorted(p.name for p in tmp_path.iterdir()) == ([source.name] if source.exists() else [])


def text_rows(small_table, n=40, **extra):
    texts = descriptions(small_table, n)
    return [{"text": text, **{k: v(i) for k, v in extra.items()}} for i, text in enumerate(texts)]


ERRORS = [
    # (file name, content (a function of the real texts), extra options, the message after "error: ")
    ("zero.jsonl", lambda texts: b"", (), "{source} is empty"),
    ("zero.csv", lambda texts: b"", (), "{source} is empty"),
    ("cut.jsonl", lambda texts: jsonl({"text": t} for t in texts[:12]) + b'{"text": "trunc', (),
     "cannot read {source} as jsonl: line 13 is not valid JSON: Unterminated string starting at (column 10); "
     "fix it, or pass --skip-bad-lines to leave it out"),
    ("bad_lines.jsonl", lambda texts: jsonl({"text": t} for t in texts[:12]) + b"[1, 2]\n\n{oops}\n42\n", (),
     "cannot read {source} as jsonl: 3 lines are bad (lines 13, 15, 16); line 13 is a JSON array, not an "
     "object; fix them, or pass --skip-bad-lines to leave them out"),
    ("garbage.jsonl", lambda texts: bytes(range(256)) * 4, ("--skip-bad-lines",),
     "cannot read {source} as jsonl: no line is a JSON object (line 1 is not valid JSON: Expecting value "
     "(column 1)); a .jsonl file holds one JSON object per line"),
    ("array.json", lambda texts: json.dumps([{"text": t} for t in texts[:12]], indent=1).encode(), (),
     "cannot read {source} as jsonl: no line is a JSON object (line 1 is not valid JSON: Expecting value "
     "(column 2)); a .jsonl file holds one JSON object per line"),
    ("garbage.parquet", lambda texts: b"PAR1" + bytes(range(256)) * 4, (),
     "cannot read {source} as parquet: Could not open Parquet input source '{source}': Parquet magic bytes not "
     "found in footer. Either the file is corrupted or this is not a parquet file."),
    ("garbage.csv", lambda texts: b"text\n" + b"\x00\xff,\n" * 3 + b"a,b,c\n", (),
     "cannot read {source} as csv: CSV parse error: Expected 1 columns, got 2: \\x00\ufffd,"),
    ("data.xlsx", lambda texts: b"PK\x03\x04", (),
     "cannot tell the format of data.xlsx from its extension; use .parquet, .csv, .tsv or .jsonl, or pass "
     "--format parquet|csv|tsv|jsonl"),
    ("header.csv", lambda texts: b"text\n", (), "{source} has no records"),
    ("one.jsonl", lambda texts: jsonl([{"text": texts[0]}]), (), "{source} has 1 record(s); a map needs at least 10"),
    ("blank.jsonl", lambda texts: jsonl({"text": " " * (i % 3)} for i in range(20)), (),
     "all 20 texts in text are empty"),
    ("nocol.jsonl", lambda texts: jsonl({"body": t} for t in texts[:12]), (),
     "column 'text' not found; columns are: body"),
    ("dup_ids.jsonl", lambda texts: jsonl({"id": i % 7, "text": t} for i, t in enumerate(texts[:12])), (),
     "id column 'id' has duplicate values: '0' at rows 0, 7 (5 duplicated ids); pass a unique column to --id, "
     "or leave --id out to number the rows"),
    ("empty_ids.jsonl", lambda texts: jsonl({"key": "" if i in (3, 8) else f"k{i}", "text": t}
                                            for i, t in enumerate(texts[:12])), ("--id", "key"),
     "id column 'key' is empty in 2 rows (first: rows 3, 8)"),
    ("struct_text.jsonl", lambda texts: jsonl({"text": {"a": i}, "body": t} for i, t in enumerate(texts[:12])), (),
     "column 'text' holds struct<a: int64>, not text; pass a text column to --text"),
    ("number_lists.jsonl", lambda texts: jsonl({"text": [i, i + 1], "body": t} for i, t in enumerate(texts[:12])),
     (), "column 'text' holds lists of int64, not text"),
    ("same.jsonl", lambda texts: jsonl({"text": texts[0]} for _ in range(30)), (),
     "all 30 texts are the same; a map needs texts that differ"),
    ("few.jsonl", lambda texts: jsonl({"text": texts[i % 4]} for i in range(20)), (),
     "only 4 of the 20 texts differ; a map needs at least 10 different texts"),
    ("ragged.tsv", lambda texts: b"text\tn\n" + b"".join(b"t%d\t%d\n" % (i, i) for i in range(12)) + b"x\t1\t2\n",
     (), "cannot read {source} as tsv: line 14 has 3 fields, the header 2; fix it, or pass --skip-bad-lines to "
     "leave it out"),
]


@pytest.mark.parametrize("name, content, options, message", ERRORS, ids=[case[0] for case in ERRORS])
def test_bad_input_fails_with_its_message_and_writes_nothing(tmp_path, small_table, name, content, options,
                                                              message):
    result, source, out = build(tmp_path, name, content(descriptions(small_table)), *options, "--text", "text")
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == f"error: {message.format(source=source)}"
    assert "Traceback" not in result.output
    assert_nothing_written(tmp_path, source)


def test_missing_file_and_directory(tmp_path):
    result, source, _ = build(tmp_path, "missing.jsonl", None, "--text", "text")
    assert (result.exit_code, result.output) == (1, f"error: {source} does not exist\n")
    result, source, _ = build(tmp_path, "folder.jsonl", {}, "--text", "text")
    assert (result.exit_code, result.output) == (1, f"error: {source} is not a file\n")
    assert_nothing_written(tmp_path, source)


@pytest.mark.parametrize("options, message", [
    (("--labels", "llm", "--llm", "missing.gguf"),
     f"--llm missing.gguf: no such file; give a .gguf model file or one of: {', '.join(CATALOGUE)}"),
    (("--cuml",), "--cuml needs a CUDA GPU; drop --cuml to run UMAP and HDBSCAN on the CPU"),
])
def test_options_the_build_cannot_honour_fail_before_reading(tmp_path, small_table, monkeypatch, options, message):
    monkeypatch.setattr("atlas.pipeline.run.gpu_name", lambda: None)  # as on a machine without a GPU
    result, source, _ = build(tmp_path, "data.jsonl", jsonl(text_rows(small_table)), "--text", "text", *options)
    assert (result.exit_code, result.output) == (1, f"error: {message}\n")  # no "read 40 records": nothing ran
    assert_nothing_written(tmp_path, source)


@pytest.mark.parametrize("command, options, message", [
    ("build", ["small.parquet", "--text", "text", "--min-cluster-size", "1"],
     "Invalid value for '--min-cluster-size': 1 is not in the range x>=2."),
    ("build", ["small.parquet", "--text", "text", "--llm-threads", "0"],
     "Invalid value for '--llm-threads': 0 is not in the range x>=1."),
    ("relabel", ["map", "--llm-contexts", "-1"], "Invalid value for '--llm-contexts': -1 is not in the range x>=1."),
])
def test_numbers_out_of_range_are_usage_errors(command, options, message):
    result = CliRunner().invoke(main, [command, *options])
    assert (result.exit_code, result.output.splitlines()[-1]) == (2, f"Error: {message}")


@pytest.mark.parametrize("command", ["serve", "info", "relabel"])
def test_a_file_or_missing_folder_is_not_a_map(tmp_path, command):
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    for path in (tmp_path / "data.parquet", tmp_path / "missing"):
        result = CliRunner().invoke(main, [command, str(path)])
        assert (result.exit_code, result.output) == (
            1, f"error: {path} is not an Atlas map (no manifest.json); build one with `atlas build`\n")


def built(result, out) -> tuple[MapDir, pa.Table]:
    assert result.exit_code == 0, result.output
    mapdir = MapDir(out)
    return mapdir, mapdir.records()


def test_truncated_jsonl_with_skip_bad_lines(tmp_path, small_table):
    content = jsonl(text_rows(small_table, 30)) + b'{"text": "half a rec'
    result, source, out = build(tmp_path, "cut.jsonl", content, "--text", "text", "--skip-bad-lines")
    mapdir, records = built(result, out)
    assert "skipped 1 bad line: 31\n" in result.output
    assert records.num_rows == 30 and mapdir.manifest()["skipped_lines"] == {"count": 1, "first": [31]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.jsonl", "map"]


def test_mixed_nested_nan_and_list_metadata_are_kept(tmp_path, small_table):
    rows = text_rows(small_table, 30, meta=lambda i: {"a": [1, {"b": i}] if i % 2 else [2.5]},
                     score=lambda i: float("nan") if i == 4 else i, tags=lambda i: ["x", i] if i % 3 else None,
                     nothing=lambda i: {})
    rows[7]["text"] = 1234  # a number where the text should be
    result, _, out = build(tmp_path, "messy.jsonl", jsonl(rows), "--text", "text")
    mapdir, records = built(result, out)
    assert records.column_names == ["text", "meta", "score", "tags", "nothing", "id"]
    assert records.column("meta").to_pylist()[:2] == ['{"a": [2.5]}', '{"a": [1, {"b": 1}]}']  # as JSON text
    assert records.column("text")[7].as_py() == "1234"  # converted
    assert records.schema.field("score").type == pa.float64() and records.column("score")[5].as_py() == 5.0
    assert str(records.column("score")[4].as_py()) == "nan"
    assert records.column("tags").to_pylist()[:3] == [None, '["x", 1]', '["x", 2]']
    assert records.column("nothing").to_pylist()[:2] == ["{}", "{}"]
    assert mapdir.manifest()["records"] == 30


def test_latin1_csv_is_read_with_replacement_characters(tmp_path, small_table):
    lines = ["text,n"] + [f'"{t.replace(chr(34), "")} café",{i}' for i, t in enumerate(descriptions(small_table, 20))]
    result, _, out = build(tmp_path, "latin1.csv", "\n".join(lines).encode("latin-1", errors="replace"),
                           "--text", "text")
    mapdir, records = built(result, out)
    assert "read 20 records from latin1.csv (0 empty texts, 20 with bytes that were not UTF-8)" in result.output
    assert records.column("text")[0].as_py().endswith(" caf\ufffd")
    assert mapdir.manifest()["invalid_utf8_records"] == 20


def test_ragged_csv_with_skip_bad_lines(tmp_path, small_table):
    lines = ["text,n"] + [f'"{t.replace(chr(34), "")}",{i}' for i, t in enumerate(descriptions(small_table, 20))]
    lines[5] += ",extra"
    result, _, out = build(tmp_path, "ragged.csv", "\n".join(lines).encode(), "--text", "text", "--skip-bad-lines")
    mapdir, records = built(result, out)
    assert "skipped 1 bad line: 6\n" in result.output
    assert records.column("n").to_pylist() == [i for i in range(20) if i != 4]


def test_a_50_mb_record_is_kept_whole(tmp_path, small_table):
    rows = text_rows(small_table, 20)
    words = " ".join(descriptions(small_table, 200))
    rows[3]["text"] = (words * (50_000_000 // len(words) + 1))[:50_000_000]
    result, _, out = build(tmp_path, "big.jsonl", jsonl(rows), "--text", "text")
    mapdir, records = built(result, out)
    assert "1 text(s) longer than 100,000 characters are embedded, indexed and deduplicated by their start" \
        in result.output
    assert len(records.column("text")[3].as_py()) == 50_000_000
    points = mapdir.points(["row", "text_len"]).to_pydict()
    assert points["text_len"][points["row"].index(3)] == 50_000_000


def test_a_parquet_id_column_of_numbers(tmp_path, small_table):
    table = pa.table({"id": list(range(12)), "text": descriptions(small_table, 12)})
    pq.write_table(table, tmp_path / "numbered.parquet")
    result = CliRunner().invoke(main, ["build", str(tmp_path / "numbered.parquet"), "--out", str(tmp_path / "map"),
                                       "--text", "text", *BUILD])
    _, records = built(result, tmp_path / "map")
    assert records.column("id").to_pylist() == [str(i) for i in range(12)]


def test_equal_texts_with_their_own_vectors_are_points_of_their_own(tmp_path):
    """Vectors from a column (`--embeddings`) need not follow the text: equal captions of
    different images stay apart, and a constant text column still makes a map."""
    rows = [{"text": "a photo", "v": [float(i % 5 == j) + 0.1 * i for j in range(5)]} for i in range(30)]
    result, _, out = build(tmp_path, "captions.jsonl", jsonl(rows), "--text", "text", "--embeddings", "v")
    assert result.exit_code == 0, result.output
    points = MapDir(out).points(["x", "y"])
    assert len({(x, y) for x, y in zip(points.column("x").to_pylist(), points.column("y").to_pylist())}) == 30

