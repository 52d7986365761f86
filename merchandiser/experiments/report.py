"""An experiment's report from the archive: ``report.sql`` attributes and aggregates, Python does the
statistics (``merchandiser.experiments.analysis``).

The archive (S3, or a local dir on the twin) holds ``events/year=YYYY/month=MM/day=DD/*.jsonl.gz`` (the
raw stream) and ``impressions/year=.../month=.../day=.../*.jsonl.gz`` (one record per served page). The
same SQL text runs on two engines:
- DuckDB (``report``): over a local dir, or an ``s3://`` archive whose partitions in the period are
  first copied to a temporary dir (the twin's archive lives in moto's S3, which DuckDB cannot reach
  without its httpfs extension, a download this machine cannot make);
- Athena (``athena_report``): over the views ``events`` and ``impressions`` of the Glue tables declared
  from ``ARCHIVE_COLUMNS`` (``merchandiser.experiments.athena``; the daily job creates the views).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from string import Template
from typing import Any

from merchandiser.experiments.analysis import ReportRow, summarize
from merchandiser.experiments.definition import Experiment
from merchandiser.store import EVENTS_PREFIX, IMPRESSIONS_PREFIX

SQL_PATH = Path(__file__).with_name("report.sql")
ARCHIVE_SUFFIX = ".jsonl.gz"
PARTITION = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/[^/]+\.jsonl\.gz$")
# The columns each table declares (DuckDB types; in Glue: string, timestamp, double, bigint,
# array<struct<item_id:string,position:bigint,source:string>>, array<string>), beside the partition
# keys year, month, day (strings). Other fields of a record are not read.
ARCHIVE_COLUMNS: dict[str, dict[str, str]] = {
    "events": {
        "event_id": "VARCHAR",
        "user_id": "VARCHAR",
        "item_id": "VARCHAR",
        "event_type": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "recommendation_id": "VARCHAR",
        "price": "DOUBLE",
        "quantity": "BIGINT",
    },
    "impressions": {
        "recommendation_id": "VARCHAR",
        "user_id": "VARCHAR",
        "surface": "VARCHAR",
        "experiment": "VARCHAR",
        "variant": "VARCHAR",
        "model_version": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "items": "STRUCT(item_id VARCHAR, position BIGINT, source VARCHAR)[]",
        "interleaving": "VARCHAR[]",
    },
}
TABLE_PREFIXES = {"events": EVENTS_PREFIX, "impressions": IMPRESSIONS_PREFIX}
EARLIEST, LATEST = date(1, 1, 1), date(9999, 12, 31)


@dataclass(frozen=True)
class AttributionWindows:
    """How long after a page an event still counts for it, per event type."""

    click: timedelta = timedelta(hours=24)
    add_to_cart: timedelta = timedelta(hours=24)
    purchase: timedelta = timedelta(days=7)
    # Events are stamped by the shopper's browser, impressions by the serving function: an event may
    # look up to this much older than the page it came from.
    clock_skew: timedelta = timedelta(minutes=5)

    @property
    def longest(self) -> timedelta:
        return max(self.click, self.add_to_cart, self.purchase)


@dataclass(frozen=True)
class Period:
    """The report's impressions are those served from ``start`` to ``end`` (UTC days, inclusive)."""

    start: date = EARLIEST
    end: date = LATEST

    def scanned(self, windows: AttributionWindows) -> tuple[date, date]:
        """The partition days read: back by the longest window for events on earlier pages, forward by
        it for events on this period's last pages."""
        margin = timedelta(days=windows.longest.days + 1)
        first = self.start - margin if self.start > EARLIEST + margin else EARLIEST
        last = self.end + margin if self.end < LATEST - margin else LATEST
        return first, last


def sql_literal(value: Any) -> str:
    """A parameter as an SQL literal both engines read the same way."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"no SQL literal for {value!r}")
    if isinstance(value, timedelta):
        return f"INTERVAL '{int(value.total_seconds())}' SECOND"
    if isinstance(value, date):
        # compared with the partition key 'YYYY-MM-DD' (strftime does not pad years before 1000)
        return f"'{value.year:04d}-{value.month:02d}-{value.day:02d}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def render_sql(template: str, **params: Any) -> str:
    """Substitutes ``${name}`` placeholders with literals; a missing parameter raises KeyError."""
    return Template(template).substitute({name: sql_literal(value) for name, value in params.items()})


def report_sql(name: str, period: Period, windows: AttributionWindows) -> str:
    first, last = period.scanned(windows)
    return render_sql(
        SQL_PATH.read_text(),
        experiment=name,
        period_start=period.start,
        period_end=period.end,
        impressions_from=first,
        events_to=last,
        click_window=windows.click,
        add_to_cart_window=windows.add_to_cart,
        purchase_window=windows.purchase,
        clock_skew=windows.clock_skew,
    )


# --- DuckDB -----------------------------------------------------------------------------------------
def duckdb_archive(root: Path) -> Any:
    """A DuckDB connection with the views ``events`` and ``impressions`` over a local archive dir."""
    import duckdb  # not in the serving layer: only the report imports it

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ -> TIMESTAMP gives UTC instants
    connection.execute("SET threads = 2")
    for table, columns in ARCHIVE_COLUMNS.items():
        pattern = root / TABLE_PREFIXES[table] / "year=*" / "month=*" / "day=*" / f"*{ARCHIVE_SUFFIX}"
        if any(root.glob(str(pattern.relative_to(root)))):
            types = ", ".join(f"'{column}': '{kind}'" for column, kind in columns.items())
            connection.execute(
                f"""CREATE VIEW {table} AS
                SELECT * REPLACE (CAST("timestamp" AS TIMESTAMP) AS "timestamp")
                FROM read_json({sql_literal(str(pattern))}, format = 'newline_delimited',
                    columns = {{{types}}}, hive_partitioning = true, ignore_errors = true,
                    hive_types = {{'year': 'VARCHAR', 'month': 'VARCHAR', 'day': 'VARCHAR'}})"""
            )
        else:  # read_json refuses a pattern without files; an empty archive is an empty table
            typed = [
                f'CAST(NULL AS {"TIMESTAMP" if kind == "TIMESTAMPTZ" else kind}) AS "{column}"'
                for column, kind in columns.items()
            ] + [f'CAST(NULL AS VARCHAR) AS "{key}"' for key in ("year", "month", "day")]
            connection.execute(f"CREATE VIEW {table} AS SELECT {', '.join(typed)} WHERE 1 = 0")
    return connection


def duckdb_values(sql: str, root: Path) -> list[tuple[Any, ...]]:
    """The typed rows of ``sql`` over a local archive dir."""
    connection = duckdb_archive(root)
    try:
        return list(connection.execute(sql).fetchall())
    finally:
        connection.close()


def query_duckdb(sql: str, root: Path) -> list[ReportRow]:
    return [ReportRow(*row) for row in duckdb_values(sql, root)]


def duckdb_query(root: Path) -> Callable[[str, type[Any]], list[Any]]:
    """Runs an SQL text over a local archive dir and types its rows: ``(sql, row type) -> rows``."""

    def run(sql: str, row_type: type[Any]) -> list[Any]:
        return [row_type(*row) for row in duckdb_values(sql, root)]

    return run


def partition_day(key: str) -> date | None:
    match = PARTITION.search(key)
    return date(int(match[1]), int(match[2]), int(match[3])) if match else None


def copy_archive(uri: str, target: Path, s3: Any, first: date, last: date) -> int:
    """Copies the archive's objects with a partition day in [first, last] under ``target``; returns
    how many. Other keys (tombstones, anything not a day partition) are not the report's."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = f"{prefix.rstrip('/')}/" if prefix else ""
    copied = 0
    for table_prefix in TABLE_PREFIXES.values():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + table_prefix):
            for obj in page.get("Contents", []):
                day = partition_day(obj["Key"])
                if day is None or not first <= day <= last:
                    continue
                local = target / obj["Key"][len(prefix) :]
                local.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(local))
                copied += 1
    return copied


def report(
    name: str,
    archive: str | Path,
    *,
    definition: Experiment | None = None,
    catalogue_size: int | None = None,
    period: Period | None = None,
    windows: AttributionWindows | None = None,
    s3: Any = None,
) -> dict[str, Any]:
    """The report of experiment ``name`` over a local archive dir or an ``s3://bucket/prefix`` URI
    (read with ``s3``, a boto3 client, or a default one), computed by DuckDB.

    ``definition`` gives the declared shares (the sample-ratio test) and the interleaving variants;
    ``catalogue_size`` the denominator of coverage. See ``analysis.summarize`` for every figure.
    """
    period, windows = period or Period(), windows or AttributionWindows()
    with local_archive(archive, s3, *period.scanned(windows)) as root:
        rows = query_duckdb(report_sql(name, period, windows), root)
    return summarize(name, rows, definition, catalogue_size)


@contextmanager
def local_archive(archive: str | Path, s3: Any, first: date, last: date) -> Iterator[Path]:
    """A local dir DuckDB can read: ``archive`` itself, or a temporary copy of the partitions from ``first``
    to ``last`` of an ``s3://bucket/prefix`` archive (read with ``s3``, or a default client)."""
    if not str(archive).startswith("s3://"):
        yield Path(archive)
        return
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="merchandiser-report-") as work:
        copy_archive(str(archive), Path(work), s3, first, last)
        yield Path(work)


# --- Athena -----------------------------------------------------------------------------------------
class AthenaQueryError(RuntimeError):
    pass


def query_athena(
    sql: str, athena: Any, database: str, output_location: str, **options: Any
) -> list[ReportRow]:
    """Runs ``sql`` on Athena and reads its rows back (strings, typed by ``ReportRow.from_text``)."""
    return [
        ReportRow.from_text(values)
        for values in athena_values(sql, athena, database, output_location, **options)
    ]


def athena_values(
    sql: str,
    athena: Any,
    database: str,
    output_location: str,
    workgroup: str = "primary",
    poll_seconds: float = 1.0,
    timeout_seconds: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[list[str | None]]:
    """Runs ``sql`` on Athena; its rows as Athena gives them back (every value a string, or None)."""
    execution_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": output_location},
        WorkGroup=workgroup,
    )["QueryExecutionId"]
    waited = 0.0
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason", "")
            raise AthenaQueryError(f"query {execution_id} {status['State']}: {reason}")
        if waited >= timeout_seconds:
            raise AthenaQueryError(f"query {execution_id} still {status['State']} after {waited:.0f} s")
        sleep(poll_seconds)
        waited += poll_seconds
    return list(_athena_values(athena, execution_id))


def _athena_values(athena: Any, execution_id: str) -> Iterator[list[str | None]]:
    header_seen = False
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        for row in page["ResultSet"]["Rows"]:
            if not header_seen:  # the first row of the first page names the columns
                header_seen = True
                continue
            yield [cell.get("VarCharValue") for cell in row["Data"]]


def athena_report(
    name: str,
    *,
    athena: Any,
    database: str,
    output_location: str,
    definition: Experiment | None = None,
    catalogue_size: int | None = None,
    period: Period | None = None,
    windows: AttributionWindows | None = None,
    **query: Any,
) -> dict[str, Any]:
    """The same report computed by Athena over the Glue tables (``query`` goes to ``query_athena``)."""
    sql = report_sql(name, period or Period(), windows or AttributionWindows())
    rows = query_athena(sql, athena, database, output_location, **query)
    return summarize(name, rows, definition, catalogue_size)
