"""The archive as Athena reads it: Glue tables over the raw JSON lines, and the two views the SQL reads.

The Glue tables ``events_raw`` and ``impressions_raw`` (the training stack declares them, with partition
projection over ``year=/month=/day=``) read every field as the JSON holds it, the ``timestamp`` as text:
a JSON SerDe's own timestamp parsing does not take every ISO 8601 form the stream carries (``Z`` or
``+00:00``, with or without fractions). The views ``events`` and ``impressions``, which ``report.sql`` and
``kpis.sql`` read, parse it with ``from_iso8601_timestamp`` (NULL when it cannot: such a row is left out,
as DuckDB's reader leaves it out on the twin). The daily job (re)creates the views before its queries,
so they always match this module.
"""

from __future__ import annotations

from merchandiser.experiments.report import ARCHIVE_COLUMNS, TABLE_PREFIXES

RAW_SUFFIX = "_raw"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
# Malformed lines (an object written before the delimiter processor, a truncated record) are skipped.
SERDE_PARAMETERS = {"ignore.malformed.json": "TRUE"}
PARTITION_KEYS = ("year", "month", "day")
TIMESTAMP = "timestamp"
# DuckDB's types (report.ARCHIVE_COLUMNS) as Hive types in the Glue tables.
GLUE_TYPES = {
    "VARCHAR": "string",
    "DOUBLE": "double",
    "BIGINT": "bigint",
    "TIMESTAMPTZ": "string",  # parsed by the view
    "STRUCT(item_id VARCHAR, position BIGINT, source VARCHAR)[]": (
        "array<struct<item_id:string,position:bigint,source:string>>"
    ),
    "VARCHAR[]": "array<string>",
}


def raw_table(table: str) -> str:
    return f"{table}{RAW_SUFFIX}"


def glue_columns(table: str) -> list[tuple[str, str]]:
    """(column, Hive type) of a raw table, in ``ARCHIVE_COLUMNS`` order."""
    return [(column, GLUE_TYPES[kind]) for column, kind in ARCHIVE_COLUMNS[table].items()]


def archive_prefix(table: str) -> str:
    return TABLE_PREFIXES[table]


def view_ddl(table: str) -> str:
    """The view ``table`` over its raw table, the timestamp parsed."""
    columns = [
        f'try(from_iso8601_timestamp("{column}")) AS "{column}"' if column == TIMESTAMP else f'"{column}"'
        for column in ARCHIVE_COLUMNS[table]
    ]
    columns += [f'"{key}"' for key in PARTITION_KEYS]
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {', '.join(columns)} FROM {raw_table(table)}"


def views() -> dict[str, str]:
    """Every view's DDL, by view name."""
    return {table: view_ddl(table) for table in ARCHIVE_COLUMNS}
