import json

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas.errors import AtlasError
from atlas.pipeline.ingest import read_dataset


def read(path, *text, **kw):
    return read_dataset(path, text_columns=text or ("description",), **kw)


def test_formats_agree(tmp_path, small_table):
    table = small_table.select(["package", "section", "installed_size_kb", "description"])
    pq.write_table(table, tmp_path / "d.parquet")
    pa.csv.write_csv(table, tmp_path / "d.csv")
    pa.csv.write_csv(table, tmp_path / "d.tsv", pa.csv.WriteOptions(delimiter="\t"))
    with open(tmp_path / "d.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in table.to_pylist())
    texts = {p.suffix: read(p).text.to_pylist() for p in tmp_path.iterdir()}
    assert texts[".csv"] == texts[".parquet"] == texts[".tsv"] == texts[".jsonl"]
    data = read(tmp_path / "d.parquet")
    assert data.table.column_names == ["package", "section", "installed_size_kb", "description", "id"]
    assert data.table.schema.field("installed_size_kb").type == pa.int64()
    assert data.table.column("id").to_pylist()[:3] == ["0", "1", "2"]


def test_join_columns_and_id(small_parquet):
    data = read(small_parquet, "package", "description", id_column="package")
    first = data.table.slice(0, 1).to_pylist()[0]
    assert data.text[0].as_py() == f"{first['package']}\n{first['description']}"
    assert data.table.column("id")[0].as_py() == first["package"]


def test_chat_columns(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"question {i}"},
                          {"role": "assistant", "content": f"answer {i}"}],
             "conversations": [{"from": "human", "value": f"hi {i}"}, {"from": "gpt", "value": "hello"}]}
            for i in range(12)]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert read(path, "messages").text[3].as_py() == "user: question 3\nassistant: answer 3"
    assert read(path, "conversations").text[0].as_py() == "human: hi 0\ngpt: hello"


def test_empty_texts_flagged_not_dropped(tmp_path, small_table):
    texts = small_table.column("description").to_pylist()
    texts[5], texts[9] = "   \n", None
    path = tmp_path / "e.parquet"
    column = small_table.schema.get_field_index("description")
    pq.write_table(small_table.set_column(column, "description", pa.array(texts)), path)
    data = read(path)
    assert data.table.num_rows == small_table.num_rows
    assert np.flatnonzero(data.empty).tolist() == [5, 9]


def test_invalid_utf8_replaced_and_counted(tmp_path):
    lines = [b"text,n"] + [b"record %d,%d" % (i, i) for i in range(12)] + [b"bad \xff\xfe bytes,99"]
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    data = read(path, "text")
    assert data.invalid_utf8 == 1
    assert data.text[12].as_py() == "bad \ufffd\ufffd bytes"


@pytest.mark.parametrize("name, content, message", [
    ("missing.parquet", None, "does not exist"),
    ("data.xlsx", b"x", "--format"),
    ("empty.csv", b"", "is empty"),
    ("header.csv", b"description\n", "no records"),
    ("blank.csv", b"description\n" + b'" "\n' * 20, "all 20 texts"),
    ("one.csv", b"description\nhello\n", "at least"),
    ("corrupt.parquet", b"PAR1 this is not parquet", "cannot read .* as parquet"),
    ("ragged.csv", b"description,n\na,1\nb,2,3\n",
     "as csv: line 3 has 3 fields, the header 2; fix it, or pass --skip-bad-lines"),
])
def test_bad_input_messages(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AtlasError, match=message):
        read(path)


def test_missing_column_lists_columns(small_parquet):
    with pytest.raises(AtlasError, match=r"column 'descripton' not found; columns are: package, source"):
        read(small_parquet, "descripton")


def test_duplicate_and_null_ids(tmp_path, small_table):
    path = tmp_path / "d.parquet"
    pq.write_table(small_table, path)
    with pytest.raises(AtlasError, match=r"duplicate values: '.*' at rows"):
        read(path, id_column="source")
    ids = small_table.column("package").to_pylist()
    ids[7] = None
    pq.write_table(small_table.set_column(0, "package", pa.array(ids)), path)
    with pytest.raises(AtlasError, match=r"empty in 1 rows \(first: rows 7\)"):
        read(path, id_column="package")


def write_lines(path, rows, tail=b""):
    path.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in rows) + tail)
    return path


def test_clean_jsonl_is_read_by_pyarrow_alone(tmp_path, small_table, monkeypatch):
    from atlas.pipeline import ingest

    monkeypatch.setattr(ingest, "parse_lines", lambda path: pytest.fail("parsed line by line"))
    path = write_lines(tmp_path / "clean.jsonl", small_table.select(["package", "description"]).to_pylist())
    assert read(path).table.num_rows == 400


def test_types_that_change_between_blocks(tmp_path, monkeypatch):
    from atlas.pipeline import jsonlines

    monkeypatch.setattr(jsonlines, "LINES_PER_BLOCK", 8)
    rows = [{"description": f"text {i}", "n": i if i < 8 else f"#{i}", "s": {"a": i} if i < 8 else {"b": "x"},
             **({"late": [i]} if i > 12 else {})} for i in range(20)]
    path = write_lines(tmp_path / "blocks.jsonl", rows, b"\xff\xfe not json\n")
    data = read(path, skip_bad_lines=True)
    table = data.table
    assert table.column_names == ["description", "n", "s", "late", "id"] and data.skipped_lines == [21]
    assert table.column("n").to_pylist()[6:10] == ["6", "7", "#8", "#9"]  # numbers, then text: all text
    assert table.schema.field("s").type == pa.struct([("a", pa.int64()), ("b", pa.string())])
    assert table.column("s")[9].as_py() == {"a": None, "b": "x"}
    assert table.column("late").to_pylist()[12:14] == [None, [13]]


def test_bad_lines_listed_at_most_ten(tmp_path, small_table):
    rows = small_table.select(["description"]).slice(0, 20).to_pylist()
    path = write_lines(tmp_path / "bad.jsonl", rows, b"nope\n" * 12)
    with pytest.raises(AtlasError, match=r"as jsonl: 12 lines are bad \(lines 21, 22, 23, 24, 25, 26, 27, 28, 29, "
                                         r"30, \.\.\.\); line 21 is not valid JSON: Expecting value \(column 1\); "
                                         r"fix them, or pass --skip-bad-lines to leave them out$"):
        read(path)
    assert read(path, skip_bad_lines=True).skipped_lines == list(range(21, 33))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
RECORDS = st.fixed_dictionaries(
    {"text": st.text(max_size=30) | JSON_VALUES},
    optional={"meta": JSON_VALUES, "n": st.integers() | st.floats(), "tags": st.lists(JSON_VALUES, max_size=3)},
)
BAD_LINES = st.sampled_from([b'{"text": "cut', b"[1, 2]", b"\xff\xfe\x00", b'"text"', b'{"text": }', b"{" * 3000])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(RECORDS, max_size=30), bad=st.lists(st.tuples(st.integers(0, 30), BAD_LINES), max_size=3),
       skip=st.booleans())
def test_any_jsonl_gives_a_dataset_or_one_clear_error(tmp_path, rows, bad, skip):
    lines = [(json.dumps(row).encode(), False) for row in rows]
    for at, line in sorted(bad, reverse=True):
        lines.insert(min(at, len(lines)), (line, True))
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in lines))
    bad_numbers = [number for number, (_, is_bad) in enumerate(lines, 1) if is_bad]
    try:
        data = read_dataset(path, text_columns=("text",), skip_bad_lines=skip)
    except AtlasError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert data.table.num_rows == len(rows) == len(data.text) == len(data.empty)
    assert data.skipped_lines == bad_numbers and (skip or not bad_numbers)
    data.table.validate(full=True)
    pq.write_table(data.table, pa.BufferOutputStream())  # every column can be stored
