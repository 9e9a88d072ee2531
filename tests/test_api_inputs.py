"""Bad input to the API: every case gets its exact 4xx status and JSON reason, and writes
nothing to the edit log. Then schemathesis throws what the OpenAPI schema allows (and breaks)
at every route, in process: no 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from atlas.server.app import create_app

COLUMNS = ("package, source, version, section, priority, installed_size_kb, architecture, maintainer, homepage, "
           "tags, description, id; built-ins: text_len, topic, dup, tag, removed, search, semantic")
DEPTH = "filter: more than 64 nested parentheses and `not`s at character {}; write the filter flatter"
BOX = [[0, 0], [1, 1], [2, 0]]
EXAMPLES = 20  # per operation and mode


def where(text: str) -> dict:
    return {"params": {"where": text}}


def body(value) -> dict:
    return {"json": value}


def raw(content: bytes) -> dict:
    return {"content": content, "headers": {"content-type": "application/json"}}


def edit(predicate, **extra) -> dict:
    return body({"action": "remove", "predicate": predicate, **extra})


CASES = [
    # the filter language: the three crashes of issue 10, then each limit and grammar error
    ("get", "/api/filter", where("1" * 6000 + ">a"), 400,
     "filter: the filter has 6,002 characters; filters have at most 4,000"),
    ("get", "/api/filter", where("(" * 500 + "text_len < 3" + ")" * 500), 400, DEPTH.format(65)),
    ("get", "/api/filter", where("not " * 1500 + "text_len < 3"), 400,
     "filter: the filter has 6,012 characters; filters have at most 4,000"),
    ("get", "/api/filter", where("not " * 100 + "text_len < 3"), 400, DEPTH.format(257)),
    ("get", "/api/filter", where("text_len < " + "9" * 41), 400,
     "filter: the number at character 12 has 41 characters; numbers have at most 40"),
    ("get", "/api/filter", where("text_len in (" + ",".join(["1"] * 1001) + ")"), 400,
     "filter: an `in` list holds at most 1000 values; 'text_len' has more at character 2014"),
    ("get", "/api/filter", where(" or ".join(['search ~ "a"'] * 11)), 400,
     "filter: at most 10 `~` searches in one filter"),
    ("get", "/api/filter", where('search ~ "' + "a" * 501 + '"'), 400,
     "filter: the search text at character 10 has 501 characters; at most 500"),
    ("get", "/api/filter", where("   "), 400, "filter: the filter is empty; write a clause such as `text_len < 20`"),
    ("get", "/api/filter", where("text_len <"), 400,
     "filter: expected a value at character 11 of 'text_len <', found 'end of filter'"),
    ("get", "/api/filter", where("nope = 1"), 400, f"filter: unknown column 'nope'; columns are: {COLUMNS}"),
    ("get", "/api/filter", where("text_len < 'a'"), 400,
     "filter: column 'text_len' is a number (int32); 'a' is not a number"),
    ("get", "/api/filter", where("tags = 'x'"), 400,
     "filter: column 'tags' is of type list<element: string>, which filters do not compare; "
     "filter on a number, text, boolean, date or timestamp column"),
    ("get", "/api/filter", {"params": {"level": "9" * 50}}, 400, f"level is 0 (coarsest) to 1, not {'9' * 50}"),
    ("get", "/api/filter", {"params": {"level": "one"}}, 422,
     "level: Input should be a valid integer, unable to parse string as an integer"),
    # duplicates, points, records, tiles, search, export
    ("get", "/api/duplicates", {"params": {"near_threshold": "nan"}}, 400,
     "near threshold nan is outside 0.7..1: the map stored only pairs at or above the build's near threshold "
     "(0.7), so thresholds can only be raised"),
    ("get", "/api/duplicates", {"params": {"limit": 501}}, 422, "limit: Input should be less than or equal to 500"),
    ("get", "/api/duplicates", {"params": {"offset": -1}}, 422,
     "offset: Input should be greater than or equal to 0"),
    ("get", "/api/points", {"params": {"x0": "nan", "y0": 0, "x1": 1, "y1": 1}}, 400,
     "the box needs finite x0 <= x1 and y0 <= y1"),
    ("get", "/api/points", {"params": {"x0": 0, "y0": 0, "x1": 1, "y1": 1, "limit": 20001}}, 422,
     "limit: Input should be less than or equal to 20000"),
    ("get", "/api/records/x", {"params": {"k": 51}}, 422, "k: Input should be less than or equal to 50"),
    ("get", "/api/records/a/b", {}, 404, "no record with id 'a/b'"),
    ("get", "/api/nowhere", {}, 404, "Not Found"),
    ("get", "/tiles/17/0/0.png", {}, 404, "no tile 17/0/0: zoom runs 0..16 and x, y 0..2**zoom-1"),
    ("get", "/tiles/0/0/0.png", where("((("), 400,
     "filter: expected a column name at character 4 of '(((', found 'end of filter'"),
    ("get", "/api/search", {"params": {"q": "x" * 501}}, 422, "q: String should have at most 500 characters"),
    ("get", "/api/search", {"params": {"q": "   "}}, 400, "the query is empty"),
    ("get", "/api/export.parquet", {"params": {"with": "everything"}}, 400,
     "unknown extra(s) everything; choose from topic_labels, dup, tags"),
    ("get", "/api/export.parquet", where("not not"), 400,
     "filter: expected a column name at character 8 of 'not not', found 'end of filter'"),
    # selections
    ("post", "/api/select", body({"steps": [{"box": [0, 0, 1, 1]}] * 101}), 400,
     "selection: 101 steps; a selection has at most 100"),
    ("post", "/api/select", body({"steps": [{"polygon": BOX * 3334}]}), 400,
     "selection: the polygon has 10,002 points; at most 10,000"),
    ("post", "/api/select", raw(b'{"steps": [{"polygon": [[NaN, 0], [1, 1], [2, 0]]}]}'), 400,
     "selection: polygon points must be finite numbers"),
    ("post", "/api/select", body({"steps": [{"polygon": [[0, 0]]}]}), 400,
     "selection: polygon is a list of at least three [x, y] points in map coordinates"),
    ("post", "/api/select", body({"steps": [{"ids": [1, 2]}]}), 400,
     "selection: ids is a list of record ids (strings)"),
    ("post", "/api/select", body({"steps": [{"where": 5}]}), 400,
     'selection: where is a filter text such as "text_len < 20", not 5'),
    ("post", "/api/select", body({"steps": []}), 400,
     'selection: give a non-empty list of steps such as [{"op": "replace", "topic": 3}]'),
    ("post", "/api/select", body({"steps": [{"box": [0, 0, 1, 1]}], "where": 5}), 422,
     "where: Input should be a valid string"),
    ("post", "/api/select", raw(b'{"steps": ['), 422, "the body is not valid JSON (Expecting value)"),
    ("post", "/api/select", raw(b"[" * 100_000), 400, "There was an error parsing the body"),
    ("post", "/api/select", raw(b" " * (1 << 20) + b"{}"), 413, "the request body is over 1,048,576 bytes"),
    # edits
    ("post", "/api/edits", body({"action": "explode", "predicate": {}}), 422,
     "action: Input should be 'tag', 'untag', 'remove' or 'restore'"),
    ("post", "/api/edits", body({"action": "remove"}), 422, "predicate: Field required"),
    ("post", "/api/edits", edit([]), 422, "predicate: Input should be a valid dictionary"),
    ("post", "/api/edits", edit({"bogus": 1}), 400,
     'a predicate is {"select": [steps]}, {"duplicates": {"keep": RULE, ...}} or {"quota": {"level": L, "cap": N, '
     "...}}, not {'bogus': 1}"),
    ("post", "/api/edits", edit({"quota": {"cap": "x"}}), 400, "quota: cap is int | None, not 'x'"),
    ("post", "/api/edits", edit({"quota": {"cap": 5, "seed": -1}}), 400, "seed is a whole number, 0 or more, not -1"),
    ("post", "/api/edits", edit({"duplicates": {"prefer": [1]}}), 400, "duplicates: prefer is Sequence[str], not [1]"),
    ("post", "/api/edits", edit({"duplicates": {"keep": "random"}}), 400,
     "survivor rule is one of longest, shortest, first, max:COL, min:COL, not 'random'"),
    ("post", "/api/edits", body({"action": "tag", "predicate": {"select": [{"topic": 0}]}}), 400,
     "tag and untag need a tag name; remove and restore take none"),
    ("post", "/api/edits", body({"action": "tag", "tag": "x" * 201, "predicate": {"select": [{"topic": 0}]}}), 422,
     "tag: String should have at most 200 characters"),
    ("post", "/api/edits", edit({"select": [{"topic": 10**30}]}), 400,
     f"filter: topic takes a topic id from 0 to 21, not {10**30}"),
    # balance, undo, redo
    ("post", "/api/balance/preview", body({"cap": 10, "target": 5}), 400,
     "a quota is exactly one of cap=N (records per topic), cap_pct=P (percent of the kept total per topic) or "
     "target=T (total, flattening the topics)"),
    ("post", "/api/balance/preview", body({"cap": 3, "seed": -3}), 400, "seed is a whole number, 0 or more, not -3"),
    ("post", "/api/balance/preview", body({"cap": "ten"}), 422,
     "cap: Input should be a valid integer, unable to parse string as an integer"),
    ("post", "/api/balance/preview", body({"cap_pct": 1e308}), 400, "cap_pct is a percentage in (0, 100], not 1e+308"),
    ("post", "/api/undo", {}, 400, "nothing to undo"),
    ("post", "/api/redo", {}, 400, "nothing to redo"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory, curation_maps, local_client):
    """The page's client on a copy of the map made for this module (its edit log starts empty)."""
    import shutil

    path = shutil.copytree(curation_maps[0].path, tmp_path_factory.mktemp("inputs") / "map")
    return local_client(create_app(path))


@pytest.mark.parametrize("method, path, kwargs, status, message", CASES,
                         ids=[f"{i}-{c[0]}-{c[1]}" for i, c in enumerate(CASES)])
def test_bad_input_is_a_4xx_with_its_reason_and_writes_nothing(page, method, path, kwargs, status, message):
    response = getattr(page, method)(path, **kwargs)
    assert (response.status_code, response.json()) == (status, {"error": message})
    log = page.app.state.views.curation.log
    assert log.last_seq() == 0 and log.entries() == []


def test_the_catalogue_is_large():
    assert len(CASES) >= 40 and {c[3] for c in CASES} == {400, 404, 413, 422}


# ---- schemathesis: whatever the schema allows, and more, is never a 5xx ----

@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, curation_maps):
    import shutil

    path = shutil.copytree(curation_maps[0].path, tmp_path_factory.mktemp("fuzz") / "map")
    app = create_app(path, hosts=["testserver"])  # the Host schemathesis's in-process client sends
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_no_input_makes_a_server_error(api_schema, mode):
    """Each operation, with inputs the schema allows (positive) and inputs it forbids (negative:
    where an operation has no input that can break its schema, there is nothing to try)."""
    tried, operations = 0, list(api_schema.get_all_operations())
    for result in operations:
        operation = result.ok()
        secret = {"X-Atlas-Token": operation.app.state.secret}

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            response = case.call(headers=secret)  # noqa: B023 (call runs inside this iteration)
            assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.query} {case.body!r}: " \
                                               f"{response.status_code} {response.text[:300]}"

        try:
            call()
            tried += 1
        except Unsatisfiable:
            assert mode is schemathesis.GenerationMode.NEGATIVE
    assert len(operations) == 19 and tried == {"positive": 19, "negative": 12}[mode.value]
