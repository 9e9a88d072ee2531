"""The map directory's schema: every column and table name of its files, spelled here once.

mapdir.py owns the file names and formats; this module owns the names inside the files.
Every module reads and writes them through these constants, never as literals.
"""

from __future__ import annotations

# records.parquet and points.parquet
ID = "id"  # the record id (a string), in both files

# points.parquet: one row per record, in spatial (Morton) order
ROW = "row"  # the record's row in records.parquet (input order)
X, Y = "x", "y"
OUTLIER = "outlier"
TEXT_LEN = "text_len"  # characters of the record's text
EMPTY = "empty"  # the text is empty or whitespace only
DUP_GROUP = "dup_group"  # null when the record is in no duplicate group
DUP_KIND = "dup_kind"
DUP_SURVIVOR = "dup_survivor"
DUP_COLUMNS = (DUP_GROUP, DUP_KIND, DUP_SURVIVOR)
MORTON = "morton"


def topic_column(level: int) -> str:
    """The points.parquet column of each record's topic id at `level` (0 is coarsest)."""
    return f"topic_{level}"


def topic_columns(levels: int) -> list[str]:
    return [topic_column(level) for level in range(levels)]


# topics.parquet: one row per topic, row i is topic id i
TOPIC_ID = "topic_id"
LEVEL = "level"
PARENT_ID = "parent_id"  # null for a coarse topic
LABEL = "label"
DESCRIPTION = "description"
LABEL_SOURCE = "label_source"
KEYWORD_LABEL = "keyword_label"
KEYWORDS = "keywords"
SIZE = "size"
LABEL_COLUMNS = (LABEL, DESCRIPTION, LABEL_SOURCE)

# dup_pairs.parquet: one row per duplicate pair (positions in points.parquet)
PAIR_A, PAIR_B, PAIR_KIND, PAIR_SIMILARITY = "a", "b", "kind", "similarity"

# search.sqlite: the FTS5 table, rowid = position in points.parquet
SEARCH_TABLE = "docs"
SEARCH_TEXT = "text"


def check_level(level: int, levels: int) -> int:
    """`level` when the map has it (0 to levels - 1); else an AtlasError naming the range."""
    from atlas.errors import AtlasError

    if not 0 <= level < levels:
        raise AtlasError(f"level is 0 (coarsest) to {levels - 1}, not {level}")
    return level
