"""The daily experiment job: every experiment's report and the online KPIs, from the archive.

Run once a day by the training stack's schedule (``lambdas/experiment_report``): in AWS on Athena over the
views ``events`` and ``impressions`` (``athena``: Glue tables with partition projection over the archive's
date prefixes), in tests on DuckDB over a local archive, with the same SQL texts (``report.sql``,
``kpis.sql``).

- for each running experiment, and each stopped one whose stop is at most ``stopped_days`` old (late
  purchases still count for its last pages): its report over its period, written to
  ``reports/experiments/<name>/<day>.json`` and ``.../latest.json`` (``GET /experiments/{name}/report``);
- the KPIs of the day ``KPI_LAG_DAYS`` before ``today`` (final by then) per surface and variant, written to
  ``reports/kpis/<day>.json``; the handler emits them as metrics;
- from the same KPI rows (one query over ``DOCUMENT_DAYS`` up to today), the per-day document
  ``reports/kpis.json`` (``GET /kpis``) and each report's ``days`` (its per-day chart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from merchandiser.experiments.analysis import summarize
from merchandiser.experiments.athena import views
from merchandiser.experiments.kpis import (
    KPI_LAG_DAYS,
    Query,
    daily_kpis,
    document_period,
    experiment_days,
    kpi_document,
    kpi_rows,
    write_kpis,
)
from merchandiser.experiments.report import (
    AttributionWindows,
    ReportRow,
    athena_values,
    report_sql,
)
from merchandiser.experiments.reports import catalogue_size, described, period_of, write_report
from merchandiser.experiments.repository import ExperimentRepository, StoredExperiment

KPIS_PREFIX = "reports/kpis/"


@dataclass
class DailyOutcome:
    kpi_day: date
    reports: dict[str, list[str]] = field(default_factory=dict)  # experiment -> keys written
    kpis: list[dict[str, Any]] = field(default_factory=list)
    kpis_key: str = ""
    document_key: str = ""  # the per-day KPI document (GET /kpis)


def athena_query(athena: Any, database: str, output_location: str, workgroup: str, **options: Any) -> Query:
    def run(sql: str, row_type: type[Any]) -> list[Any]:
        values = athena_values(sql, athena, database, output_location, workgroup=workgroup, **options)
        return [row_type.from_text(row) for row in values]

    return run


def prepare_athena(athena: Any, database: str, output_location: str, workgroup: str, **options: Any) -> None:
    """(Re)creates the views ``events`` and ``impressions`` the SQL reads (``athena.views``)."""
    for ddl in views().values():
        athena_values(ddl, athena, database, output_location, workgroup=workgroup, **options)


def reported(stored: StoredExperiment, today: date, stopped_days: int) -> bool:
    if stored.experiment.running:
        return True
    stopped = stored.stopped_at.astimezone(UTC).date() if stored.stopped_at else None
    return stopped is not None and today - stopped <= timedelta(days=stopped_days)


def run_daily(
    repository: ExperimentRepository,
    query: Query,
    s3: Any,
    bucket: str,
    today: date,
    engine: str,
    stopped_days: int = 7,
    windows: AttributionWindows | None = None,
) -> DailyOutcome:
    size = catalogue_size(s3, bucket)
    now = datetime.now(UTC)
    outcome = DailyOutcome(kpi_day=today - timedelta(days=KPI_LAG_DAYS))
    shown = document_period(today)
    kpis = kpi_rows(query, shown)
    document = kpi_document(kpis, shown, size, now, final_through=outcome.kpi_day)
    for stored in repository.list_stored():
        if not reported(stored, today, stopped_days):
            continue
        name, period = stored.experiment.name, period_of(stored, today)
        rows = query(report_sql(name, period, windows or AttributionWindows()), ReportRow)
        result = described(summarize(name, rows, stored.experiment, size), period, engine, now)
        result["days"] = experiment_days(document, name, period)
        outcome.reports[name] = write_report(s3, bucket, name, result, today)
    outcome.kpis = daily_kpis(kpis, outcome.kpi_day, size)
    outcome.document_key = write_kpis(s3, bucket, document)
    outcome.kpis_key = f"{KPIS_PREFIX}{outcome.kpi_day.isoformat()}.json"
    body = json.dumps({"day": outcome.kpi_day.isoformat(), "kpis": outcome.kpis}, indent=2).encode()
    s3.put_object(Bucket=bucket, Key=outcome.kpis_key, Body=body, ContentType="application/json")
    return outcome
