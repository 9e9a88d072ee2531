"""The filter language, shared by the CLI and the API: parsed, never evaluated as code or SQL.

    filter  := or
    or      := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" filter ")" | clause
    clause  := COL ("=" | "!=" | "<" | "<=" | ">" | ">=") VALUE
             | COL "in" "(" VALUE ("," VALUE)* ")"
             | COL "between" VALUE "and" VALUE
             | ("search" | "semantic") "~" STRING
    VALUE   := number | 'string' | "string" | ISO date or timestamp | true | false | null

Keywords are case-insensitive; a column name with spaces is written in backquotes. COL is
any column of the input records (numbers, strings, categories, booleans, dates, timestamps;
a quoted ISO string is accepted for dates) or a built-in:

    text_len   characters of the text            topic      a topic id at any level (its subtopics too)
    dup        exact|near|semantic|template|any|none|removable (what "remove duplicates" takes by default)
    tag        a tag name                        removed    true|false
    search ~ "words"    keyword search           semantic ~ "words"   semantic search

`COL = null` matches missing values; any other comparison with a missing value is false, and
`not` flips the whole mask. Examples: `text_len < 20 and not dup = none`,
`(topic = 12 or topic = 40) and created >= 2024-01-01`, `lang in ("en", "de")`.
A filter evaluates to a numpy bool mask in points.parquet order, one vectorised pass per clause.

Limits keep one filter's work bounded (each is an AtlasError naming it): MAX_LENGTH characters,
MAX_DEPTH nested parentheses and `not`s, MAX_NUMBER characters per number, MAX_IN values per
`in` list, MAX_SEARCHES `search ~`/`semantic ~` clauses of at most MAX_SEARCH_TEXT characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.pipeline.dedup import KINDS
from atlas.schema import DUP_GROUP, DUP_KIND, DUP_SURVIVOR, ROW, TEXT_LEN, topic_column

if TYPE_CHECKING:
    from atlas.edits import EditState

Search = Callable[[str], np.ndarray]  # query -> positions in points order
Value = float | int | str | bool | date | datetime | None

BUILTINS = ("text_len", "topic", "dup", "tag", "removed", "search", "semantic")
DUP_VALUES = (*KINDS[1:], "any", "none", "removable")
COMPARISONS = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
               ">": pc.greater, ">=": pc.greater_equal}
KEYWORDS = {"and", "or", "not", "in", "between", "true", "false", "null"}
MAX_LENGTH = 4000
MAX_DEPTH = 64
MAX_NUMBER = 40
MAX_IN = 1000
MAX_SEARCHES = 10
MAX_SEARCH_TEXT = 500
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<date>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)(?![\w.])
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted_name>`[^`]+`)
  | (?P<name>[A-Za-z_][\w.]*)
  | (?P<op><=|>=|!=|==|=|<|>|~|\(|\)|,)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # date | number | string | name | op | keyword | end
    text: str
    value: Value = None
    at: int = 0


def tokenize(text: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if not match:
            raise AtlasError(f"filter: unexpected {text[at:at + 12]!r} at character {at + 1} of {text!r}")
        kind, raw = match.lastgroup, match.group()
        if kind != "space":
            tokens.append(_token(kind, raw, at))
        at = match.end()
    return [*tokens, Token("end", "end of filter", at=len(text))]


def _token(kind: str, raw: str, at: int) -> Token:
    if kind == "date":
        return Token("date", raw, parse_datetime(raw), at)
    if kind == "number":
        if len(raw) > MAX_NUMBER:
            raise AtlasError(f"filter: the number at character {at + 1} has {len(raw)} characters; "
                             f"numbers have at most {MAX_NUMBER}")
        return Token("number", raw, _number(raw), at)
    if kind == "string":
        return Token("string", raw, re.sub(r"\\(.)", r"\1", raw[1:-1]), at)
    if kind == "quoted_name":
        return Token("name", raw, raw[1:-1], at)
    if kind == "name" and raw.lower() in KEYWORDS:
        return Token("keyword", raw.lower(), {"true": True, "false": False}.get(raw.lower()), at)
    return Token(kind, raw, raw, at)


def _number(raw: str) -> int | float:
    """An int when it is one that fits 64 bits, else a float (1e999 is inf)."""
    if not re.search(r"[.eE]", raw) and -2**63 <= (value := int(raw)) < 2**63:
        return value
    return float(raw)


def parse_datetime(text: str) -> date | datetime:
    """An ISO date (`2024-01-05`) or timestamp (`2024-01-05T10:30:00Z`)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AtlasError(f"filter: {text!r} is not an ISO date or timestamp (2024-01-05, 2024-01-05T10:30:00)") \
            from None


# The predicate tree: each node evaluates itself to a bool mask over a Frame.

@dataclass(frozen=True)
class Compare:
    column: str
    op: str  # one of COMPARISONS, or "~"
    value: Value

    def mask(self, frame: Frame) -> np.ndarray:
        return frame.compare(self.column, self.op, self.value)


@dataclass(frozen=True)
class In:
    column: str
    values: tuple[Value, ...]

    def mask(self, frame: Frame) -> np.ndarray:
        return _fold(np.logical_or, (frame.compare(self.column, "=", v) for v in self.values))


@dataclass(frozen=True)
class Between:
    column: str
    low: Value
    high: Value

    def mask(self, frame: Frame) -> np.ndarray:
        return frame.compare(self.column, ">=", self.low) & frame.compare(self.column, "<=", self.high)


@dataclass(frozen=True)
class Not:
    item: Node

    def mask(self, frame: Frame) -> np.ndarray:
        return ~self.item.mask(frame)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]

    def mask(self, frame: Frame) -> np.ndarray:
        return _fold(np.logical_and, (item.mask(frame) for item in self.items))


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]

    def mask(self, frame: Frame) -> np.ndarray:
        return _fold(np.logical_or, (item.mask(frame) for item in self.items))


def _fold(combine: np.ufunc, masks: Iterator[np.ndarray]) -> np.ndarray:
    """Masks combined one at a time, in place: two masks in memory however many there are."""
    out = next(masks).copy()
    for mask in masks:
        combine(out, mask, out=out)
    return out


Node = Compare | In | Between | Not | And | Or


def columns_used(node: Node) -> set[str]:
    """The column names a filter reads."""
    if isinstance(node, Not):
        return columns_used(node.item)
    if isinstance(node, (And, Or)):
        return set().union(*(columns_used(item) for item in node.items))
    return {node.column}


class Parser:
    """Recursive descent over the tokens; one method per grammar rule."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses and `not`s open around the current token
        self.searches = 0

    def parse(self) -> Node:
        node = self.disjunction()
        self.expect("end")
        return node

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None, what: str | None = None) -> Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            wanted = what or (repr(text) if text else kind)
            raise AtlasError(f"filter: expected {wanted} at character {token.at + 1} of {self.text!r}, "
                             f"found {token.text!r}")
        return self.take()

    def disjunction(self) -> Node:
        items = [self.conjunction()]
        while self.accept("keyword", "or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.unary()]
        while self.accept("keyword", "and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        if (self.peek().kind, self.peek().text) in (("keyword", "not"), ("op", "(")):
            return self.nested()
        return self.clause()

    def nested(self) -> Node:
        """`not` unary, or ( filter ): one level deeper, at most MAX_DEPTH."""
        token = self.take()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise AtlasError(f"filter: more than {MAX_DEPTH} nested parentheses and `not`s at character "
                             f"{token.at + 1}; write the filter flatter")
        if token.text == "not":
            node = Not(self.unary())
        else:
            node = self.disjunction()
            self.expect("op", ")")
        self.depth -= 1
        return node

    def clause(self) -> Node:
        column = self.expect("name", what="a column name").value
        if self.accept("keyword", "in"):
            self.expect("op", "(")
            values = [self.value()]
            while self.accept("op", ","):
                if len(values) == MAX_IN:
                    raise AtlasError(f"filter: an `in` list holds at most {MAX_IN} values; "
                                     f"{column!r} has more at character {self.peek().at + 1}")
                values.append(self.value())
            self.expect("op", ")")
            return In(column, tuple(values))
        if self.accept("keyword", "between"):
            low = self.value()
            self.expect("keyword", "and")
            return Between(column, low, self.value())
        if self.accept("op", "~"):
            return self.search(column)
        op = self.expect("op", what="a comparison (=, !=, <, <=, >, >=, in, between, ~)").text
        if op not in COMPARISONS and op != "==":
            raise AtlasError(f"filter: {op!r} is not a comparison; use =, !=, <, <=, >, >=, in, between or ~")
        return Compare(column, "=" if op == "==" else op, self.value())

    def search(self, column: str) -> Compare:
        token = self.expect("string", what="a quoted search text")
        self.searches += 1
        if self.searches > MAX_SEARCHES:
            raise AtlasError(f"filter: at most {MAX_SEARCHES} `~` searches in one filter")
        if len(token.value) > MAX_SEARCH_TEXT:
            raise AtlasError(f"filter: the search text at character {token.at + 1} has {len(token.value)} "
                             f"characters; at most {MAX_SEARCH_TEXT}")
        return Compare(column, "~", token.value)

    def value(self) -> Value:
        token = self.take()  # a bare word (`dup = near`) is text
        if token.kind in ("number", "string", "date", "name") or token.text in ("true", "false", "null"):
            return token.value
        raise AtlasError(f"filter: expected a value at character {token.at + 1} of {self.text!r}, "
                         f"found {token.text!r}")


def parse(text: str) -> Node:
    """The predicate tree of a filter; AtlasError naming the position of a syntax error."""
    if not text or not text.strip():
        raise AtlasError("filter: the filter is empty; write a clause such as `text_len < 20`")
    if len(text) > MAX_LENGTH:
        raise AtlasError(f"filter: the filter has {len(text):,} characters; filters have at most {MAX_LENGTH:,}")
    return Parser(text).parse()


@dataclass
class Frame:
    """The columns a filter reads, all in points.parquet order.

    `records` is records.parquet (input order; a column is reordered by `points.row` on first
    use and cached). `topic_level[t]` is the level of topic id t. `state` returns the current
    edits (removed mask and tag masks); `search` and `semantic` return matching positions.
    """

    points: pa.Table
    records: pa.Table
    topic_level: np.ndarray
    state: Callable[[], EditState] | None = None
    search: Search | None = None
    semantic: Search | None = None

    def __post_init__(self):
        self._cache: dict[str, pa.Array] = {}
        self.rows = pa.array(self.points.column(ROW).to_numpy())

    def __len__(self) -> int:
        return self.points.num_rows

    def mask(self, text: str | None) -> np.ndarray:
        """Bool mask of the records matching filter `text` (all records when None)."""
        return np.ones(len(self), bool) if text is None else parse(text).mask(self)

    def metadata_columns(self) -> list[str]:
        return [c for c in self.records.column_names if c not in BUILTINS]

    def column(self, name: str) -> pa.Array:
        """A records column in points order (dictionary columns decoded)."""
        if name not in self._cache:
            if name not in self.records.column_names or name in BUILTINS:
                raise AtlasError(f"filter: unknown column {name!r}; columns are: "
                                 f"{', '.join(self.metadata_columns())}; built-ins: {', '.join(BUILTINS)}")
            array = self.records.column(name).take(self.rows).combine_chunks()
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            self._cache[name] = array
        return self._cache[name]

    def compare(self, column: str, op: str, value: Value) -> np.ndarray:
        builtin = getattr(self, f"_builtin_{column}", None)
        if builtin is not None:
            return builtin(op, value)
        return compare_array(self.column(column), column, op, value)

    def _builtin_text_len(self, op: str, value: Value) -> np.ndarray:
        return compare_array(self.points.column(TEXT_LEN).combine_chunks(), "text_len", op, value)

    def _builtin_topic(self, op: str, value: Value) -> np.ndarray:
        _only(op, ("=", "!="), "topic", "a topic id")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(self.topic_level):
            raise AtlasError(f"filter: topic takes a topic id from 0 to {len(self.topic_level) - 1}, not {value!r}")
        found = self.points.column(topic_column(self.topic_level[value])).to_numpy() == value
        return found if op == "=" else ~found

    def _builtin_dup(self, op: str, value: Value) -> np.ndarray:
        _only(op, ("=", "!="), "dup", "|".join(DUP_VALUES))
        if value not in DUP_VALUES:
            raise AtlasError(f"filter: dup is one of {', '.join(DUP_VALUES)}, not {value!r}")
        in_group = self.points.column(DUP_GROUP).is_valid().to_numpy(zero_copy_only=False)
        if value in ("any", "none"):
            found = in_group if value == "any" else ~in_group
        elif value == "removable":
            found = in_group & ~self.points.column(DUP_SURVIVOR).to_numpy(zero_copy_only=False)
        else:
            found = _filled(pc.equal(self.points.column(DUP_KIND), value))
        return found if op == "=" else ~found

    def _builtin_tag(self, op: str, value: Value) -> np.ndarray:
        _only(op, ("=", "!="), "tag", "a quoted tag name")
        if not isinstance(value, str):
            raise AtlasError(f"filter: tag takes a tag name such as tag = \"junk\", not {value!r}")
        tags = self._state("tag").tags
        found = tags[value].copy() if value in tags else np.zeros(len(self), bool)
        return found if op == "=" else ~found

    def _builtin_removed(self, op: str, value: Value) -> np.ndarray:
        _only(op, ("=", "!="), "removed", "true or false")
        if not isinstance(value, bool):
            raise AtlasError(f"filter: removed is true or false, not {value!r}")
        found = self._state("removed").removed
        return found == value if op == "=" else found != value

    def _builtin_search(self, op: str, value: Value) -> np.ndarray:
        return self._search_mask("search", self.search, op, value)

    def _builtin_semantic(self, op: str, value: Value) -> np.ndarray:
        return self._search_mask("semantic", self.semantic, op, value)

    def _search_mask(self, name: str, search: Search | None, op: str, value: Value) -> np.ndarray:
        _only(op, ("~",), name, 'a quoted text, as in search ~ "words"')
        if search is None:
            raise AtlasError(f"filter: {name} ~ needs the map's search index, which is not available here")
        found = np.zeros(len(self), bool)
        found[np.asarray(search(str(value)), np.int64)] = True
        return found

    def _state(self, name: str) -> EditState:
        if self.state is None:
            raise AtlasError(f"filter: {name} needs the map's edit log; filter through a map directory")
        return self.state()


def _only(op: str, allowed: tuple[str, ...], column: str, values: str) -> None:
    if op not in allowed:
        ops = " or ".join(allowed)
        raise AtlasError(f"filter: {column} takes {ops} with {values}, not {op!r}")


def _filled(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def compare_array(array: pa.Array, column: str, op: str, value: Value) -> np.ndarray:
    """`array OP value` as a bool mask (missing values: false), checking the value's type."""
    if op == "~":
        raise AtlasError(f"filter: ~ is for search and semantic only; compare {column} with =, <, in...")
    if value is None:
        _only(op, ("=", "!="), column, "null")
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        return ~valid if op == "=" else valid
    try:
        scalar = _scalar(array.type, column, value)
        if pa.types.is_boolean(array.type):
            _only(op, ("=", "!="), column, "true or false")
        return _filled(COMPARISONS[op](array, scalar))
    except (pa.ArrowException, OverflowError) as e:  # a value out of the column type's range
        raise AtlasError(f"filter: {column} {op} {value!r} cannot be compared: {e}") from None


def _scalar(kind: pa.DataType, column: str, value: Value) -> pa.Scalar:
    """`value` as a scalar of the column's type; AtlasError saying the column's type otherwise."""
    if pa.types.is_boolean(kind) and isinstance(value, bool):
        return pa.scalar(value)
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)) \
            and isinstance(value, (int, float)) and not isinstance(value, bool):
        return pa.scalar(value)
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and isinstance(value, str):
        return pa.scalar(value, kind)
    if pa.types.is_temporal(kind) and isinstance(value, (str, date)):
        moment = parse_datetime(value) if isinstance(value, str) else value
        return _temporal(kind, moment)
    name = _type_name(kind)
    if name is None:
        raise AtlasError(f"filter: column {column!r} is of type {kind}, which filters do not compare; "
                         "filter on a number, text, boolean, date or timestamp column")
    raise AtlasError(f"filter: column {column!r} is {name} ({kind}); {value!r} is not {_type_example(kind)}")


def _temporal(kind: pa.DataType, moment: date | datetime) -> pa.Scalar:
    if pa.types.is_date(kind):
        return pa.scalar(moment.date() if isinstance(moment, datetime) else moment, kind)
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if kind.tz and moment.tzinfo is None:  # a time without zone means UTC
        moment = moment.replace(tzinfo=UTC)
    elif not kind.tz and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return pc.cast(pa.scalar(moment), kind)


def _type_name(kind: pa.DataType) -> str | None:
    for test, name in ((pa.types.is_boolean, "boolean"), (pa.types.is_integer, "a number"),
                       (pa.types.is_floating, "a number"), (pa.types.is_decimal, "a number"),
                       (pa.types.is_string, "text"), (pa.types.is_large_string, "text"),
                       (pa.types.is_date, "a date"), (pa.types.is_timestamp, "a timestamp")):
        if test(kind):
            return name
    return None


def _type_example(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "true or false"
    if pa.types.is_temporal(kind):
        return "an ISO date such as 2024-01-05"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return 'a quoted text such as "en"'
    return "a number"
