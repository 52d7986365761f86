"""The online KPIs of served pages, per day, surface and variant: CTR, conversion, coverage.

``kpis.sql`` counts pages, attributed clicks, add-to-carts, purchases, revenue and distinct items shown
over the archive (DuckDB or Athena, like ``report.sql``); ``daily_kpis`` turns the rows of one reported
day into the figures the daily job writes and emits as CloudWatch metrics, with each group's CTR over
the ``BASELINE_DAYS`` days before it (the alarm compares the two):

- ``ctr`` = attributed clicks / pages; ``conversion`` = attributed purchases / pages;
- ``coverage`` = distinct items shown / the catalogue's items (None when the catalogue size is unknown);
- ``ctr_baseline`` = clicks / pages over the baseline days (None without pages then).

One attribution window (``KPI_WINDOW``, 24 h) for every event type: a day's KPIs are final once it
has passed, which is why the daily job reports the day ``KPI_LAG_DAYS`` before it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from merchandiser.experiments.report import AttributionWindows, render_sql

KPIS_SQL = Path(__file__).with_name("kpis.sql")
KPI_WINDOW = timedelta(hours=24)
KPI_LAG_DAYS = 2
BASELINE_DAYS = 7
ALL_VARIANTS = "all"


class KpiRow(NamedTuple):
    day: str
    surface: str
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
        day, surface, variant, impressions, clicks, carts, purchases, revenue, items = values
        return cls(
            str(day),
            str(surface),
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


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def daily_kpis(rows: Sequence[KpiRow], day: date, catalogue_size: int | None) -> list[dict[str, Any]]:
    """One record per (surface, variant) with pages on ``day``, with its CTR over the days before."""
    reported = day.isoformat()
    baseline: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if row.day < reported:
            pages_clicks = baseline.setdefault((row.surface, row.variant), [0, 0])
            pages_clicks[0] += row.impressions
            pages_clicks[1] += row.clicks
    records = []
    for row in rows:
        if row.day != reported:
            continue
        pages, clicks = baseline.get((row.surface, row.variant), [0, 0])
        records.append(
            {
                "day": reported,
                "surface": row.surface,
                "variant": row.variant,
                "impressions": row.impressions,
                "clicks": row.clicks,
                "add_to_carts": row.add_to_carts,
                "purchases": row.purchases,
                "revenue": round(row.revenue, 6),
                "items_shown": row.items_shown,
                "ctr": _ratio(row.clicks, row.impressions),
                "conversion": _ratio(row.purchases, row.impressions),
                "coverage": _ratio(row.items_shown, catalogue_size or 0),
                "ctr_baseline": _ratio(clicks, pages),
            }
        )
    return sorted(records, key=lambda record: (record["surface"], record["variant"]))


def kpis_for(query: Query, day: date, catalogue_size: int | None) -> list[dict[str, Any]]:
    """The KPIs of ``day``, read with the ``BASELINE_DAYS`` days before it."""
    rows = query(kpis_sql(day - timedelta(days=BASELINE_DAYS), day), KpiRow)
    return daily_kpis(rows, day, catalogue_size)
