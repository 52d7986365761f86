"""Online KPIs per day from the archive: CTR, conversion and catalogue coverage of the served pages, per
surface, and each experiment variant's figures per day (the report's ``days``, for its chart).

``kpis.sql`` runs on the report's engines (``merchandiser.experiments.report``): DuckDB over a local dir
or a copy of an ``s3://`` archive (``kpis``), Athena over the Glue tables (``athena_kpis``). The daily
experiment job stores the document under ``reports/kpis.json`` (``write_kpis``); ``GET /kpis`` serves it
(``read_kpis``), so no request waits on a query.

The document:
``{"computed_at", "period": {"start", "end"}, "catalogue_size",
   "surfaces": {SURFACE: [{"day", "impressions", "clicks", "add_to_carts", "purchases", "revenue",
                           "items_shown", "ctr", "conversion", "coverage"}, ...]},
   "experiments": {NAME: [{"day", "variants": {VARIANT: {"impressions", ..., "ctr", "conversion"}}}, ...]}}``
Ratios are per served page, as in the report; ``coverage`` is the distinct items shown that day over the
catalogue (None when its size is unknown). Days are oldest first; a day without pages is absent.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from merchandiser.experiments.report import (
    SQL_PATH,
    AttributionWindows,
    Period,
    copy_archive,
    duckdb_archive,
    query_athena,
    render_sql,
)
from merchandiser.store import KPIS_KEY, read_json

KPIS_SQL_PATH = SQL_PATH.with_name("kpis.sql")
DEFAULT_DAYS = 14
COUNTS = ("impressions", "clicks", "add_to_carts", "purchases")


class KpiRow(NamedTuple):
    section: str
    day: str
    surface: str | None
    experiment: str | None
    variant: str | None
    impressions: int | None
    clicks: int | None
    add_to_carts: int | None
    purchases: int | None
    revenue: float | None
    items_shown: int | None

    @classmethod
    def from_text(cls, values: list[str | None]) -> KpiRow:
        """From Athena's result strings."""
        section, day, surface, experiment, variant, *numbers = values
        typed: list[Any] = [
            None if text is None or text == "" else (float(text) if i == 4 else int(text))
            for i, text in enumerate(numbers)
        ]
        return cls(str(section), str(day), surface, experiment, variant, *typed)


def last_days(today: date, days: int = DEFAULT_DAYS) -> Period:
    return Period(start=today - timedelta(days=days - 1), end=today)


def kpis_sql(period: Period, windows: AttributionWindows) -> str:
    return render_sql(
        KPIS_SQL_PATH.read_text(),
        period_start=period.start,
        period_end=period.end,
        events_to=period.scanned(windows)[1],
        click_window=windows.click,
        add_to_cart_window=windows.add_to_cart,
        purchase_window=windows.purchase,
        clock_skew=windows.clock_skew,
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _figures(row: KpiRow) -> dict[str, Any]:
    counts = {key: int(getattr(row, key) or 0) for key in COUNTS}
    revenue = round(float(row.revenue or 0.0), 6)
    return {
        "day": row.day,
        **counts,
        "revenue": revenue,
        "ctr": _ratio(counts["clicks"], counts["impressions"]),
        "conversion": _ratio(counts["purchases"], counts["impressions"]),
    }


def summarize_kpis(
    rows: list[KpiRow], period: Period, catalogue_size: int | None, computed_at: datetime
) -> dict[str, Any]:
    items_shown = {
        (row.day, row.surface): int(row.items_shown or 0) for row in rows if row.section == "surface_items"
    }
    surfaces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    experiments: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for row in sorted(rows, key=lambda r: (r.day, r.section)):
        if row.section == "surface" and row.surface is not None:
            shown = items_shown.get((row.day, row.surface), 0)
            surfaces[row.surface].append(
                {**_figures(row), "items_shown": shown, "coverage": _ratio(shown, catalogue_size or 0)}
            )
        elif row.section == "variant" and row.experiment is not None and row.variant is not None:
            figures = _figures(row)
            experiments[row.experiment][figures.pop("day")][row.variant] = figures
    return {
        "computed_at": computed_at.astimezone(UTC).isoformat(),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "catalogue_size": catalogue_size,
        "surfaces": dict(sorted(surfaces.items())),
        "experiments": {
            name: [{"day": day, "variants": variants} for day, variants in sorted(days.items())]
            for name, days in sorted(experiments.items())
        },
    }


def kpis(
    archive: str | Path,
    *,
    period: Period,
    catalogue_size: int | None = None,
    windows: AttributionWindows | None = None,
    s3: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The KPI document over a local archive dir or an ``s3://bucket/prefix`` URI, computed by DuckDB."""
    windows = windows or AttributionWindows()
    sql = kpis_sql(period, windows)
    if str(archive).startswith("s3://"):
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        with tempfile.TemporaryDirectory(prefix="merchandiser-kpis-") as work:
            copy_archive(str(archive), Path(work), s3, period.start, period.scanned(windows)[1])
            rows = _query_duckdb(sql, Path(work))
    else:
        rows = _query_duckdb(sql, Path(archive))
    return summarize_kpis(rows, period, catalogue_size, now or datetime.now(UTC))


def _query_duckdb(sql: str, root: Path) -> list[KpiRow]:
    connection = duckdb_archive(root)
    try:
        return [KpiRow(*row) for row in connection.execute(sql).fetchall()]
    finally:
        connection.close()


def athena_kpis(
    *,
    athena: Any,
    database: str,
    output_location: str,
    period: Period,
    catalogue_size: int | None = None,
    windows: AttributionWindows | None = None,
    now: datetime | None = None,
    **query: Any,
) -> dict[str, Any]:
    """The same document computed by Athena over the Glue tables (``query`` goes to ``query_athena``)."""
    sql = kpis_sql(period, windows or AttributionWindows())
    rows = query_athena(sql, athena, database, output_location, parse=KpiRow.from_text, **query)
    return summarize_kpis(rows, period, catalogue_size, now or datetime.now(UTC))


def write_kpis(s3: Any, bucket: str, document: dict[str, Any]) -> str:
    """Stores the document where ``GET /kpis`` reads it; returns its key."""
    s3.put_object(
        Bucket=bucket, Key=KPIS_KEY, Body=json.dumps(document).encode(), ContentType="application/json"
    )
    return KPIS_KEY


def read_kpis(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The last stored document, or None when the daily job has not written one yet."""
    return read_json(s3, bucket, KPIS_KEY)


def experiment_days(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """An experiment's per-day figures from the document: what the report adds as ``days`` (``?by=day``)."""
    days: list[dict[str, Any]] = document.get("experiments", {}).get(name, [])
    return days
