"""The filter language on a tiny exact frame: every clause type, combinations, and errors."""

from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas.edits import EditState
from atlas.errors import AtlasError
from atlas.filters import Frame, parse, tokenize

# six records; points order is records order reversed, to check columns are reordered
RECORDS = pa.table({
    "lang": ["en", "de", "en", None, "fr", "en"],
    "score": [0.5, 1.5, None, 3.0, 2.0, 9.0],
    "n": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
    "flag": [True, False, True, None, False, True],
    "day": pa.array([date(2024, 1, d) for d in (1, 2, 3, 4, 5, 6)], pa.date32()),
    "ts": pa.array([datetime(2024, 1, 1, h) for h in range(6)], pa.timestamp("us", tz="UTC")),
    "cat": pa.array(["a", "b", "a", "b", "c", "a"]).dictionary_encode(),
    "nested": [[1], [2], [], [3], [4], [5]],
    "id": ["r0", "r1", "r2", "r3", "r4", "r5"],
})
ROWS = np.array([5, 4, 3, 2, 1, 0])
POINTS = pa.table({
    "id": pa.array([f"r{r}" for r in ROWS]),
    "row": ROWS,
    "x": np.arange(6, dtype=np.float32),
    "y": np.zeros(6, np.float32),
    "topic_0": pa.array([0, 0, 0, 1, 1, 1], pa.int32()),
    "topic_1": pa.array([2, 2, 3, 4, 4, 4], pa.int32()),
    "text_len": pa.array([10, 20, 30, 40, 50, 60], pa.int32()),
    "dup_group": pa.array([0, 0, 1, 1, None, None], pa.int64()),
    "dup_kind": pa.array(["exact", "exact", "near", "semantic", None, None]),
    "dup_survivor": [True, False, True, False, True, True],
})
LEVELS = np.array([0, 0, 1, 1, 1])  # topics 0, 1 coarse; 2, 3 under 0; 4 under 1


def tiny_frame() -> Frame:
    """Six records with a state (r1, r4 removed; r0, r5 tagged junk) and fake searches."""
    state = EditState(np.array([0, 3, 0, 0, 7, 0]), {"junk": np.array([1, 0, 0, 0, 0, 1], bool)})
    return Frame(POINTS, RECORDS, LEVELS, state=lambda: state,
                 search=lambda q: np.array([0, 2]) if q == "hello" else np.array([], np.int64),
                 semantic=lambda q: np.array([5]))


@pytest.fixture
def frame():
    return tiny_frame()


def ids(frame, text):
    return [f"r{r}" for r in ROWS[frame.mask(text)]]


@pytest.mark.parametrize("text, expected", [
    ("n = 3", ["r2"]), ("n == 3", ["r2"]), ("n != 3", ["r5", "r4", "r3", "r1", "r0"]),
    ("n < 3", ["r1", "r0"]), ("n <= 2", ["r1", "r0"]), ("n > 5", ["r5"]), ("n >= 5", ["r5", "r4"]),
    ("score > 1.9", ["r5", "r4", "r3"]), ("score between 1 and 3", ["r4", "r3", "r1"]),
    ("n in (1, 6)", ["r5", "r0"]), ("score < -1e3", []),
])
def test_numbers(frame, text, expected):
    assert ids(frame, text) == expected


def test_strings_categories_bools_and_null(frame):
    assert ids(frame, 'lang = "en"') == ["r5", "r2", "r0"]
    assert ids(frame, "lang = 'de'") == ["r1"]
    assert ids(frame, 'lang in ("de", "fr")') == ["r4", "r1"]
    assert ids(frame, "lang = null") == ["r3"]
    assert ids(frame, "lang != null") == ["r5", "r4", "r2", "r1", "r0"]
    assert ids(frame, "lang != 'en'") == ["r4", "r1"]  # a missing value matches no comparison
    assert ids(frame, "cat = 'b'") == ["r3", "r1"]
    assert ids(frame, "cat in (a, c)") == ["r5", "r4", "r2", "r0"]
    assert ids(frame, "flag = true") == ["r5", "r2", "r0"]
    assert ids(frame, "flag = FALSE") == ["r4", "r1"]
    assert ids(frame, 'id = "r4"') == ["r4"]


def test_dates_and_timestamps(frame):
    assert ids(frame, "day >= 2024-01-05") == ["r5", "r4"]
    assert ids(frame, "day = '2024-01-02'") == ["r1"]
    assert ids(frame, "day between 2024-01-02 and 2024-01-03") == ["r2", "r1"]
    assert ids(frame, "ts < 2024-01-01T02:00:00Z") == ["r1", "r0"]
    assert ids(frame, "ts >= 2024-01-01T04:00") == ["r5", "r4"]  # no zone: UTC
    assert ids(frame, "ts = 2024-01-01T05:00:00+02:00") == ["r3"]
    assert ids(frame, "ts > 2024-01-01") == ["r5", "r4", "r3", "r2", "r1"]


def test_combinations_and_precedence(frame):
    assert ids(frame, "n = 1 or n = 2 and lang = 'en'") == ["r0"]  # and binds tighter
    assert ids(frame, "(n = 1 or n = 2) and lang = 'de'") == ["r1"]
    assert ids(frame, "not n < 5") == ["r5", "r4"]
    assert ids(frame, "not (n < 5 or lang = 'fr')") == ["r5"]
    assert ids(frame, "NOT not n = 1") == ["r0"]
    assert ids(frame, "n > 1 AND n < 4 OR n = 6") == ["r5", "r2", "r1"]


def test_builtins(frame):
    assert ids(frame, "text_len >= 50") == ["r1", "r0"]
    assert ids(frame, "topic = 0") == ["r5", "r4", "r3"]  # a coarse topic holds its subtopics
    assert ids(frame, "topic = 2") == ["r5", "r4"]
    assert ids(frame, "topic != 4") == ["r5", "r4", "r3"]
    assert ids(frame, "topic in (3, 4)") == ["r3", "r2", "r1", "r0"]
    assert ids(frame, "dup = exact") == ["r5", "r4"]
    assert ids(frame, "dup = 'near'") == ["r3"]
    assert ids(frame, "dup = any") == ["r5", "r4", "r3", "r2"]
    assert ids(frame, "dup = none") == ["r1", "r0"]
    assert ids(frame, "dup = removable") == ["r4", "r2"]
    assert ids(frame, "dup != removable and dup = any") == ["r5", "r3"]
    assert ids(frame, 'tag = "junk"') == ["r5", "r0"]
    assert ids(frame, 'tag = "other"') == []
    assert ids(frame, "removed = true") == ["r4", "r1"]
    assert ids(frame, "removed = false and tag != junk") == ["r3", "r2"]
    assert ids(frame, 'search ~ "hello"') == ["r5", "r3"]
    assert ids(frame, 'semantic ~ "anything" or search ~ "nothing"') == ["r0"]


@pytest.mark.parametrize("text, message", [
    ("nope = 1", "unknown column 'nope'; columns are: lang, score, n, flag, day, ts, cat, nested, id"),
    ("n = 'x'", "column 'n' is a number (int64); 'x' is not a number"),
    ("lang > 3", "column 'lang' is text (string); 3 is not a quoted text"),
    ("flag < true", "flag takes = or != with true or false"),
    ("day = 2024-13-45", "not an ISO date"),
    ("day = 'yesterday'", "not an ISO date"),
    ("nested = 1", "nested' is of type list<item: int64>, which filters do not compare"),
    ("topic = 9", "topic takes a topic id from 0 to 4"),
    ("topic < 2", "topic takes = or !="),
    ("dup = maybe", "dup is one of exact, near, semantic, template, any, none, removable"),
    ("removed = 1", "removed is true or false"),
    ("search = 'x'", 'search takes ~ with a quoted text'),
    ("n ~ 'x'", "~ is for search and semantic only"),
    ("n <", "expected a value at character 4"),
    ("(n = 1", "expected ')'"),
    ("n = 1 n = 2", "expected end"),
    ("n = 1 and", "expected a column name"),
    ("n @ 1", "unexpected '@ 1'"),
    ("", "the filter is empty"),
])
def test_errors_name_the_fix(frame, text, message):
    with pytest.raises(AtlasError) as error:
        frame.mask(text)
    assert message in str(error.value)


def test_search_needs_a_callback():
    bare = Frame(POINTS, RECORDS, LEVELS)
    with pytest.raises(AtlasError, match="search index"):
        bare.mask('search ~ "x"')
    with pytest.raises(AtlasError, match="edit log"):
        bare.mask("removed = true")


def test_tokens_and_tree():
    kinds = [t.kind for t in tokenize("`my col` >= -1.5e2 and d = 2024-01-02 or s in ('a\\'b')")]
    assert kinds == ["name", "op", "number", "keyword", "name", "op", "date", "keyword", "name", "keyword",
                     "op", "string", "op", "end"]
    assert tokenize("'a\\'b'")[0].value == "a'b"
    tree = parse("not (a = 1 or b between 2 and 3)")
    assert type(tree).__name__ == "Not" and type(tree.item).__name__ == "Or"


RUN = "__import__('pathlib').Path('ran').touch()"  # as Python, this creates the file ./ran


@pytest.mark.parametrize("text, excerpt, at", [
    (f"{RUN} = 1", ".Path('ran')", 22),
    (f"n = {RUN}", ".Path('ran')", 26),
    (f"n = 1 or {RUN}", ".Path('ran')", 31),
    (f'lang = "en"; {RUN}', "; __import__", 12),
])
def test_no_python_evaluation(frame, tmp_path, monkeypatch, text, excerpt, at):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AtlasError) as error:
        frame.mask(text)
    assert str(error.value) == f"filter: unexpected {excerpt!r} at character {at} of {text!r}"
    assert not (tmp_path / "ran").exists()
    with pytest.raises(AtlasError, match="^filter: unknown column '__class__'; columns are: lang, score, n"):
        frame.mask("`__class__` = 1")


# ---- limits: every one is an AtlasError naming it, never a RecursionError or ValueError ----

@pytest.mark.parametrize("text, message", [
    ("n = 1 or " * 500 + "n = 1", "filter: the filter has 4,505 characters; filters have at most 4,000"),
    ("n < " + "9" * 41, "filter: the number at character 5 has 41 characters; numbers have at most 40"),
    ("(" * 65 + "n = 1" + ")" * 65, "filter: more than 64 nested parentheses and `not`s at character 65; "
                                    "write the filter flatter"),
    ("not " * 65 + "n = 1", "filter: more than 64 nested parentheses and `not`s at character 257; "
                            "write the filter flatter"),
    ("n in (" + ",".join(["1"] * 1001) + ")", "filter: an `in` list holds at most 1000 values; 'n' has more "
                                              "at character 2007"),
    (" or ".join(['search ~ "x"'] * 11), "filter: at most 10 `~` searches in one filter"),
    ('search ~ "' + "x" * 501 + '"', "filter: the search text at character 10 has 501 characters; at most 500"),
])
def test_limits(frame, text, message):
    with pytest.raises(AtlasError) as error:
        frame.mask(text)
    assert str(error.value).startswith(message)


def test_limits_allow_what_they_bound(frame):
    assert ids(frame, "(" * 64 + "n = 1" + ")" * 64) == ["r0"]
    assert ids(frame, "not " * 64 + "n = 1") == ["r0"]
    assert ids(frame, "n in (" + ",".join(["1"] * 1000) + ")") == ["r0"]
    assert ids(frame, "n < " + "9" * 40) == [f"r{r}" for r in ROWS]  # beyond int64: compared as a float
    assert ids(frame, "score < 1e999 and n > -1e999") == ["r5", "r4", "r3", "r1", "r0"]


# ---- property tests: any text is a mask or an AtlasError with a message, nothing else ----

WORDS = ["lang", "score", "n", "flag", "day", "ts", "cat", "nested", "id", "`my col`", "text_len", "topic", "dup",
         "tag", "removed", "search", "semantic", "and", "or", "not", "in", "between", "(", ")", ",", "=", "==",
         "!=", "<", "<=", ">", ">=", "~", "true", "false", "null", "near", "removable", "'en'", '"junk"', "'a\\'b'",
         '"hello"', "0", "-1", "3", "2.5", "1e308", "-1e999", "9" * 30, "2024-01-03", "0001-01-01",
         "9999-12-31T23:59:59", "2024-01-01T00:00:00+14:00", "0001-01-01T00:00:00+01:00", "2024-02-30"]


def _mask_or_message(text: str) -> None:
    try:
        mask = tiny_frame().mask(text)
    except AtlasError as error:
        assert str(error).startswith("filter: ") and len(str(error)) > len("filter: ")
    else:
        assert mask.dtype == bool and mask.shape == (6,)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=25))
def test_any_token_sequence_is_a_mask_or_an_error(words):
    _mask_or_message(" ".join(words))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_mask_or_an_error(text):
    _mask_or_message(text)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["not ", "("]), max_size=200))
def test_any_nesting_is_a_mask_or_an_error(openers):
    text = "".join(openers) + "n = 1" + ")" * openers.count("(")
    _mask_or_message(text)
