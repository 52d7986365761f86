"""The online KPIs of served pages, per day, surface, experiment and variant: CTR, conversion, coverage.

``kpis.sql`` counts pages, attributed clicks, add-to-carts, purchases, revenue and distinct items shown
over the archive (DuckDB or Athena, like ``report.sql``). Two views are built from the same rows:

- ``daily_kpis``: the rows of one reported day as the figures the daily job writes and emits as CloudWatch
  metrics (by surface and variant), with each group's CTR over the ``BASELINE_DAYS`` days before it (the
  alarm compares the two);
- ``kpi_document``: every day of the rows, per surface (its variant ``all``: the console's KPI view,
  ``GET /kpis``) and per experiment and variant summed over its surfaces (an experiment report's ``days``,
  its per-day chart). The daily job stores it as ``reports/kpis.json`` (``write_kpis``).

The figures: ``ctr`` = attributed clicks / pages; ``conversion`` = attributed purchases / pages;
``coverage`` = distinct items shown / the catalogue's items (None when its size is unknown; a surface's
only: distinct items do not add up over surfaces); ``ctr_baseline`` = clicks / pages over the baseline
days (None without pages then).

One attribution window (``KPI_WINDOW``, 24 h) for every event type: a day's KPIs are final once it
has passed, which is why the daily job reports the day ``KPI_LAG_DAYS`` before it runs. An experiment's
per-day clicks and add-to-carts are therefore its report's counts over that day; its purchases are those
within 24 h of the page (the report waits 7 days for a purchase).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from merchandiser.experiments.report import AttributionWindows, Period, render_sql
from merchandiser.store import KPIS_KEY, read_json

KPIS_SQL = Path(__file__).with_name("kpis.sql")
KPI_WINDOW = timedelta(hours=24)
KPI_LAG_DAYS = 2
BASELINE_DAYS = 7
ALL_VARIANTS = "all"
# The days of the stored document (``GET /kpis``): two weeks up to the day the job runs.
DOCUMENT_DAYS = 14
COUNTS = ("impressions", "clicks", "add_to_carts", "purchases")


class KpiRow(NamedTuple):
    day: str
    surface: str
    experiment: str  # '' outside experiments, and on the surface's variant 'all'
    variant: str
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: float
    items_shown: int

    @classmethod
    def from_text(cls, values: Sequence[str | None]) -> KpiRow:
        """From Athena's result strings."""
        day, surface, experiment, variant, impressions, clicks, carts, purchases, revenue, items = values
        return cls(
            str(day),
            str(surface),
            str(experiment or ""),
            str(variant),
            int(impressions or 0),
            int(clicks or 0),
            int(carts or 0),
            int(purchases or 0),
            float(revenue or 0.0),
            int(items or 0),
        )


# Runs an SQL text on an engine and types its rows: (sql, row type) -> rows.
Query = Callable[[str, type[Any]], list[Any]]


def kpis_sql(first_day: date, last_day: date, window: timedelta = KPI_WINDOW) -> str:
    """KPIs of the pages served from ``first_day`` to ``last_day``, events read a day past the window."""
    return render_sql(
        KPIS_SQL.read_text(),
        first_day=first_day,
        last_day=last_day,
        events_to=last_day + timedelta(days=window.days + 1),
        window=window,
        clock_skew=AttributionWindows().clock_skew,
    )


def kpi_rows(query: Query, period: Period) -> list[KpiRow]:
    return list(query(kpis_sql(period.start, period.end), KpiRow))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _figures(counts: dict[str, int], revenue: float) -> dict[str, Any]:
    """Counts, revenue and the ratios per page: one shape for a day's records and the document."""
    return {
        **counts,
        "revenue": round(revenue, 6),
        "ctr": _ratio(counts["clicks"], counts["impressions"]),
        "conversion": _ratio(counts["purchases"], counts["impressions"]),
    }


def _row_figures(row: KpiRow, catalogue_size: int | None) -> dict[str, Any]:
    return {
        **_figures({key: getattr(row, key) for key in COUNTS}, row.revenue),
        "items_shown": row.items_shown,
        "coverage": _ratio(row.items_shown, catalogue_size or 0),
    }


def daily_kpis(rows: Sequence[KpiRow], day: date, catalogue_size: int | None) -> list[dict[str, Any]]:
    """One record per (surface, experiment, variant) with pages on ``day``, with its CTR over the
    ``BASELINE_DAYS`` days before."""
    reported, since = day.isoformat(), (day - timedelta(days=BASELINE_DAYS)).isoformat()
    baseline: dict[tuple[str, str, str], list[int]] = {}
    for row in rows:
        if since <= row.day < reported:
            pages_clicks = baseline.setdefault((row.surface, row.experiment, row.variant), [0, 0])
            pages_clicks[0] += row.impressions
            pages_clicks[1] += row.clicks
    records = []
    for row in rows:
        if row.day != reported:
            continue
        pages, clicks = baseline.get((row.surface, row.experiment, row.variant), [0, 0])
        records.append(
            {
                "day": reported,
                "surface": row.surface,
                "experiment": row.experiment,
                "variant": row.variant,
                **_row_figures(row, catalogue_size),
                "ctr_baseline": _ratio(clicks, pages),
            }
        )
    return sorted(records, key=lambda record: (record["surface"], record["experiment"], record["variant"]))


def kpis_for(query: Query, day: date, catalogue_size: int | None) -> list[dict[str, Any]]:
    """The KPIs of ``day``, read with the ``BASELINE_DAYS`` days before it."""
    rows = kpi_rows(query, Period(day - timedelta(days=BASELINE_DAYS), day))
    return daily_kpis(rows, day, catalogue_size)


def kpi_document(
    rows: Sequence[KpiRow],
    period: Period,
    catalogue_size: int | None,
    computed_at: datetime,
    final_through: date | None = None,
) -> dict[str, Any]:
    """Every day of ``rows``: ``{"computed_at", "period": {"start", "end"}, "final_through",
    "catalogue_size", "surfaces": {SURFACE: [{"day", counts, "revenue", "ctr", "conversion", "items_shown",
    "coverage"}, ...]}, "experiments": {NAME: [{"day", "variants": {VARIANT: {counts, "revenue", "ctr",
    "conversion"}}}, ...]}}``, days oldest first, a day without pages absent. Days after ``final_through``
    may still gain events within the attribution window."""
    surfaces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    summed: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0] * (len(COUNTS) + 1))
    for row in sorted(rows):
        if row.variant == ALL_VARIANTS and not row.experiment:
            surfaces[row.surface].append({"day": row.day, **_row_figures(row, catalogue_size)})
        elif row.experiment:
            totals = summed[(row.experiment, row.day, row.variant)]
            for n, value in enumerate((*(getattr(row, key) for key in COUNTS), row.revenue)):
                totals[n] += value
    experiments: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for (name, day, variant), totals in sorted(summed.items()):
        counts = {key: int(value) for key, value in zip(COUNTS, totals, strict=False)}
        experiments[name][day][variant] = _figures(counts, totals[-1])
    return {
        "computed_at": computed_at.astimezone(UTC).isoformat(),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "final_through": final_through.isoformat() if final_through else None,
        "catalogue_size": catalogue_size,
        "surfaces": dict(sorted(surfaces.items())),
        "experiments": {
            name: [{"day": day, "variants": variants} for day, variants in sorted(days.items())]
            for name, days in sorted(experiments.items())
        },
    }


def document_period(today: date, days: int = DOCUMENT_DAYS) -> Period:
    """The days of the stored document: ``days`` up to ``today``."""
    return Period(today - timedelta(days=days - 1), today)


def experiment_days(
    document: dict[str, Any], name: str, period: Period | None = None
) -> list[dict[str, Any]]:
    """An experiment's per-day figures in the document (within ``period`` when given): a report's ``days``."""
    days: list[dict[str, Any]] = document.get("experiments", {}).get(name, [])
    if period is None:
        return days
    first, last = period.start.isoformat(), period.end.isoformat()
    return [day for day in days if first <= day["day"] <= last]


def write_kpis(s3: Any, bucket: str, document: dict[str, Any]) -> str:
    """Stores the document where ``GET /kpis`` reads it; returns its key."""
    s3.put_object(
        Bucket=bucket, Key=KPIS_KEY, Body=json.dumps(document).encode(), ContentType="application/json"
    )
    return KPIS_KEY


def read_kpis(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The last stored document, or None when the daily job has not written one yet."""
    return read_json(s3, bucket, KPIS_KEY)
