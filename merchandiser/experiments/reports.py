"""Where an experiment's report comes from, and where it is kept.

Two sources, one JSON (``report.summarize``'s, plus ``period``, ``generated_at``, ``engine`` and ``days``,
the per-day figures of the period's last two weeks from the KPI rows: ``kpis.kpi_document``):
- the daily job (``merchandiser.experiments.daily``, Athena over the Glue tables in AWS) writes
  ``reports/experiments/<name>/<YYYY-MM-DD>.json`` and ``reports/experiments/<name>/latest.json`` in the
  artifacts bucket; ``GET /experiments/{name}/report`` reads the latest in AWS;
- ``archive_report`` computes it on the spot with DuckDB over the bucket's archive (the local twin).

The period of a report is the experiment's: from the day it started to the day it stopped (today while
it runs), so a report never scans the archive of days the experiment did not run.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from merchandiser.experiments.errors import UnknownExperimentError
from merchandiser.experiments.kpis import document_period, experiment_days, kpi_document, kpi_rows
from merchandiser.experiments.report import (
    LATEST,
    AttributionWindows,
    Period,
    duckdb_query,
    local_archive,
    report,
)
from merchandiser.experiments.repository import StoredExperiment
from merchandiser.store import PRODUCTION_POINTER

REPORTS_PREFIX = "reports/experiments/"
LATEST_NAME = "latest"


class ReportNotFoundError(UnknownExperimentError):
    """The experiment exists but no report of it has been written yet (maps to 404, with when it will)."""


def report_key(name: str, day: date | None = None) -> str:
    """The dated report of ``day``, or the latest (``day`` None)."""
    return f"{REPORTS_PREFIX}{name}/{LATEST_NAME if day is None else day.isoformat()}.json"


def period_of(stored: StoredExperiment, today: date | None = None) -> Period:
    """From the day the experiment started (or the archive's beginning, if it never recorded it) to the
    day it stopped, or ``today`` while it runs (or the archive's end without ``today``)."""
    start = stored.started_at.astimezone(UTC).date() if stored.started_at else Period().start
    if stored.stopped_at is not None and not stored.experiment.running:
        end = stored.stopped_at.astimezone(UTC).date()
    else:
        end = today or LATEST
    return Period(start, max(start, end))


def described(result: dict[str, Any], period: Period, engine: str, generated_at: datetime) -> dict[str, Any]:
    """The report with what it covers and how it was made."""
    return {
        **result,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "engine": engine,
        "generated_at": generated_at.astimezone(UTC).isoformat(),
    }


def catalogue_size(s3: Any, bucket: str) -> int | None:
    """Items in the production model's catalogue (the denominator of coverage); None when unknown."""
    try:
        pointer = json.loads(s3.get_object(Bucket=bucket, Key=PRODUCTION_POINTER)["Body"].read())
        items = pointer["manifest"]["data"]["items"]
        return int(items) if items else None
    except Exception:  # no model published yet, or an older pointer: coverage is then relative
        return None


def archive_report(
    stored: StoredExperiment,
    s3: Any,
    bucket: str,
    windows: AttributionWindows | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report computed now by DuckDB over the bucket's archive, with its ``days`` as the daily job gives
    them (the KPI rows of the period's last ``DOCUMENT_DAYS``), from one copy of the archive."""
    now = now or datetime.now(UTC)
    name, period = stored.experiment.name, period_of(stored, now.astimezone(UTC).date())
    windows = windows or AttributionWindows()
    size = catalogue_size(s3, bucket)
    charted = Period(max(period.start, document_period(period.end).start), period.end)
    with local_archive(f"s3://{bucket}", s3, *period.scanned(windows)) as root:
        result = report(
            name, root, definition=stored.experiment, catalogue_size=size, period=period, windows=windows
        )
        rows = kpi_rows(duckdb_query(root), charted)
    result["days"] = experiment_days(kpi_document(rows, charted, size, now), name)
    return described(result, period, "duckdb", now)


def write_report(s3: Any, bucket: str, name: str, result: dict[str, Any], day: date) -> list[str]:
    """Writes the dated report and the latest; returns their keys."""
    body = json.dumps(result, indent=2, sort_keys=True).encode()
    keys = [report_key(name, day), report_key(name)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return keys


def latest_report(s3: Any, bucket: str, name: str) -> dict[str, Any]:
    """The latest report the daily job wrote, or ``ReportNotFoundError``."""
    try:
        body = s3.get_object(Bucket=bucket, Key=report_key(name))["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise ReportNotFoundError(
            f"no report of experiment {name!r} yet: the daily report job writes one after the experiment's"
            " first day"
        ) from None
    result: dict[str, Any] = json.loads(body)
    return result
