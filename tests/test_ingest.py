import json

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

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
    ("ragged.csv", b"description,n\na,1\nb,2,3\n", "cannot read .* as csv: .*Expected 2 columns"),
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
