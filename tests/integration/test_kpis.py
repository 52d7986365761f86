"""The KPI document per day over the archive (DuckDB): per surface, and per experiment variant as the report
counts them under the KPIs' 24 h window; built from the same rows as the daily job's metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from merchandiser.experiments import (
    KPI_WINDOW,
    AttributionWindows,
    KpiRow,
    Period,
    daily_kpis,
    document_period,
    duckdb_query,
    experiment_days,
    kpi_document,
    kpi_rows,
    read_kpis,
    report,
    write_kpis,
)
from tests.experiment_archive import (
    DAY,
    HOLDOUT_SPLIT,
    HOUR,
    MINUTE,
    T0,
    event,
    impression,
    known_archive,
    write_records,
)

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def by_day(figures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["day"]: row for row in figures}


def document(root: Path, period: Period, catalogue_size: int | None = None) -> dict[str, Any]:
    return kpi_document(kpi_rows(duckdb_query(root), period), period, catalogue_size, NOW)


def test_kpis_per_surface_count_each_page_and_attributed_event_once_per_day(tmp_path: Path):
    # Given pages on two surfaces over two days, a replayed page and a replayed click, and events that
    # are not attributable (someone else's page, too late, no recommendation id)
    pages = [
        impression("h1", "u1", "production", T0, ["a", "b"], experiment=""),
        impression("h2", "u2", "production", T0, ["b", "c"], experiment=""),
        impression("s1", None, "production", T0, ["d"], experiment="", surface="popular"),
        impression("h3", "u1", "production", T0 + DAY, ["a"], experiment=""),
    ]
    write_records(tmp_path, "impressions", [*pages, pages[0]])
    events = [
        event("c1", "u1", "a", "click", T0 + MINUTE, "h1"),
        event("c2", "u2", "b", "click", T0 + MINUTE, "h2"),
        event("p1", "u2", "b", "purchase", T0 + HOUR, "h2", price=4.0, quantity=3),
        event("c3", "u9", "a", "click", T0 + MINUTE, "h1"),  # another shopper's page
        event("c4", "u1", "a", "click", T0 + DAY + 25 * HOUR, "h3"),  # a click after 24 h
        event("c5", "u1", "a", "click", T0),  # no recommendation id
    ]
    write_records(tmp_path, "events", [*events, events[0]])
    # When the KPIs of the days around them are computed with a catalogue of 10 items
    period = Period(T0.date(), (T0 + 2 * DAY).date())
    shown = document(tmp_path, period, catalogue_size=10)
    # Then home has 2 pages on the first day, 2 clicks and a purchase of 12, 3 distinct items
    home = by_day(shown["surfaces"]["home"])
    first, second = T0.date().isoformat(), (T0 + DAY).date().isoformat()
    assert home[first] == {
        "day": first,
        "impressions": 2,
        "clicks": 2,
        "add_to_carts": 0,
        "purchases": 1,
        "revenue": 12.0,
        "ctr": 1.0,
        "conversion": 0.5,
        "items_shown": 3,
        "coverage": 0.3,
    }
    # and one page, no click on the second day; the anonymous popular page is counted, never credited
    assert (home[second]["impressions"], home[second]["clicks"], home[second]["ctr"]) == (1, 0, 0.0)
    assert by_day(shown["surfaces"]["popular"])[first]["impressions"] == 1
    assert shown["period"] == {"start": first, "end": period.end.isoformat()}
    assert shown["computed_at"] == NOW.isoformat() and shown["experiments"] == {}


def test_a_variants_figures_per_day_are_the_reports_counts_under_the_kpi_window(tmp_path: Path):
    # Given the report's known archive (every attribution case once)
    known_archive(tmp_path)
    day = Period(T0.date(), T0.date())
    # When the KPI document and the report are computed over the same day, the report with the KPIs' window
    shown = document(tmp_path, day)
    kpi_windows = AttributionWindows(purchase=KPI_WINDOW)
    expected = report("exp", tmp_path, definition=HOLDOUT_SPLIT, period=day, windows=kpi_windows)
    # Then each variant's counts are the report's, exactly
    [only_day] = experiment_days(shown, "exp")
    assert only_day["day"] == T0.date().isoformat()
    for variant, figures in expected["variants"].items():
        for key in ("impressions", "clicks", "add_to_carts", "purchases", "revenue", "ctr", "conversion"):
            assert only_day["variants"][variant][key] == pytest.approx(figures[key]), (variant, key)
    # and the report's own 7-day purchase window credits the purchase of day 3 the KPIs leave out
    weekly = report("exp", tmp_path, definition=HOLDOUT_SPLIT, period=day)["variants"]["holdout"]
    assert (weekly["purchases"], only_day["variants"]["holdout"]["purchases"]) == (1, 0)
    # and the other experiment is its own, the pages outside experiments are no variant
    assert set(shown["experiments"]) == {"exp", "other"}


def test_an_experiments_days_are_those_of_the_period_asked(tmp_path: Path):
    known_archive(tmp_path)
    shown = document(tmp_path, Period(T0.date(), (T0 + DAY).date()))
    assert [d["day"] for d in experiment_days(shown, "exp")] == [T0.date().isoformat()]
    assert experiment_days(shown, "exp", Period((T0 + DAY).date(), (T0 + DAY).date())) == []
    assert experiment_days(shown, "unknown") == []


def test_the_days_metrics_count_only_the_baseline_days_before_it():
    # Given home pages on the reported day, within the 7 baseline days and 8 days before it
    def row(day: str, pages: int, clicks: int) -> KpiRow:
        return KpiRow(day, "home", "", "all", pages, clicks, 0, 0, 0.0, 1)

    rows = [row("2026-11-02", 10, 10), row("2026-11-03", 4, 1), row("2026-11-10", 2, 1)]
    # When the day's records are made
    [record] = daily_kpis(rows, T0.date(), catalogue_size=None)
    # Then the baseline is the 7 days before (the 8th day back is not in it), coverage unknown
    assert record["ctr_baseline"] == 0.25 and record["ctr"] == 0.5 and record["coverage"] is None
    assert (record["experiment"], record["variant"]) == ("", "all")


def test_an_empty_archive_gives_an_empty_document_not_an_error(tmp_path: Path):
    shown = document(tmp_path, document_period(NOW.date(), 7), catalogue_size=5)
    assert shown["surfaces"] == {} and shown["experiments"] == {}
    assert shown["period"]["start"] == "2026-11-24"


def test_athena_result_strings_are_typed():
    row = KpiRow.from_text(["2026-11-10", "home", None, "all", "3", "1", "0", "0", "2.5", ""])
    assert row.impressions == 3 and row.revenue == 2.5 and row.items_shown == 0 and row.experiment == ""


def test_the_document_is_stored_and_read_back_and_absent_means_none(aws: Any):
    s3 = boto3.client("s3")
    assert read_kpis(s3, "artifacts") is None
    key = write_kpis(s3, "artifacts", {"surfaces": {}, "experiments": {}})
    assert key == "reports/kpis.json"
    assert read_kpis(s3, "artifacts") == {"surfaces": {}, "experiments": {}}
