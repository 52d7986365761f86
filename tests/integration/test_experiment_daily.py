"""The daily experiment job: the online KPIs of a day against their baseline, every running experiment's
report written where the admin route reads it, and the job's handler on its engine (moto's Athena)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, date, timedelta
from pathlib import Path

import boto3
import pytest

from merchandiser.experiments import (
    ExperimentRepository,
    duckdb_query,
    experiment_days,
    kpis_for,
    latest_report,
    read_kpis,
    run_daily,
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


def kpi_archive(root: Path) -> None:
    """Day T0: a holdout and a personalized home page, a production similar page; the day before: two home
    pages with one click between them (the baseline)."""
    write_records(
        root,
        "impressions",
        [
            impression("b1", "u8", "production", T0 - DAY, ["a"], experiment=""),
            impression("b2", "u9", "production", T0 - DAY, ["b"], experiment=""),
            impression("r1", "u1", "holdout", T0, ["a", "b"]),
            impression("r2", "u2", "personalized", T0, ["c"]),
            impression("r3", "u3", "production", T0, ["a"], experiment="", surface="similar"),
        ],
    )
    write_records(
        root,
        "events",
        [
            event("e0", "u8", "a", "click", T0 - DAY + MINUTE, "b1"),
            event("e1", "u1", "a", "click", T0 + MINUTE, "r1"),
            event("e2", "u3", "a", "purchase", T0 + HOUR, "r3", price=10.0, quantity=1),
            event("e3", "u3", "a", "click", T0 + 25 * HOUR, "r3"),  # after the KPIs' 24 h window
            event("e4", "u2", "c", "click", T0 + MINUTE, "r1"),  # someone else's page
        ],
    )


def test_the_kpis_of_a_day_count_pages_clicks_and_coverage_per_surface_and_variant(tmp_path: Path) -> None:
    kpi_archive(tmp_path)
    records = {(r["surface"], r["variant"]): r for r in kpis_for(duckdb_query(tmp_path), T0.date(), 10)}
    assert set(records) == {
        ("home", "holdout"), ("home", "personalized"), ("home", "all"), ("similar", "production"),
        ("similar", "all"),
    }  # fmt: skip
    home = records[("home", "all")]
    assert (home["impressions"], home["clicks"], home["items_shown"]) == (2, 1, 3)
    assert home["ctr"] == 0.5 and home["coverage"] == pytest.approx(0.3)
    assert home["ctr_baseline"] == 0.5  # the day before: two pages, one click
    assert records[("home", "holdout")]["ctr"] == 1.0 and records[("home", "personalized")]["clicks"] == 0
    assert records[("home", "holdout")]["ctr_baseline"] is None  # no holdout pages before
    similar = records[("similar", "production")]
    assert (similar["clicks"], similar["purchases"], similar["revenue"], similar["conversion"]) == (
        0,
        1,
        10.0,
        1.0,
    )


def started(name: str = "exp", on: str = "2026-11-10T00:00:00+00:00") -> None:
    """The known archive's experiment, stored as started on the archive's first day."""
    boto3.client("dynamodb").put_item(
        TableName="experiments",
        Item={
            "name": {"S": name},
            "definition": {"S": HOLDOUT_SPLIT.model_dump_json()},
            "status": {"S": "running"},
            "started_at": {"S": on},
        },
    )


def test_the_job_writes_every_running_experiments_report_and_the_days_kpis(aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Given the known archive and its experiment, started on its first day
    known_archive(tmp_path)
    started()
    repository = ExperimentRepository("experiments", boto3.client("dynamodb"))
    s3 = boto3.client("s3")
    # When the job runs on DuckDB over it, ten days later
    outcome = run_daily(
        repository, duckdb_query(tmp_path), s3, "artifacts", today=date(2026, 11, 20), engine="duckdb"
    )
    # Then the report is where the admin route reads it, over the experiment's period, with exact counts
    report = latest_report(s3, "artifacts", "exp")
    assert sorted(outcome.reports) == ["exp"] and report["engine"] == "duckdb"
    assert report["period"] == {"start": "2026-11-10", "end": "2026-11-20"}
    assert (report["variants"]["holdout"]["impressions"], report["variants"]["holdout"]["clicks"]) == (2, 2)
    assert s3.get_object(Bucket="artifacts", Key="reports/experiments/exp/2026-11-20.json")
    # And the KPIs of the day two days before (final by then: 24 h of attribution) are in the bucket
    kpis = json.loads(s3.get_object(Bucket="artifacts", Key=outcome.kpis_key)["Body"].read())
    assert kpis["day"] == "2026-11-18" == outcome.kpi_day.isoformat() and kpis["kpis"] == outcome.kpis
    # And from the same KPI rows: the per-day document GET /kpis serves (two weeks, final up to that day)
    # and the report's per-day chart, which is the document's days of the experiment
    document = read_kpis(s3, "artifacts")
    assert document is not None and outcome.document_key == "reports/kpis.json"
    assert document["period"] == {"start": "2026-11-07", "end": "2026-11-20"}
    assert document["final_through"] == "2026-11-18"
    assert [day["day"] for day in document["surfaces"]["home"]] == ["2026-11-10"]
    assert report["days"] == experiment_days(document, "exp") != []
    holdout = report["days"][0]["variants"]["holdout"]
    assert (holdout["impressions"], holdout["clicks"], holdout["purchases"]) == (2, 2, 0)  # 24 h window


def test_a_stopped_experiment_is_reported_for_a_week_after_its_stop(aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    started()
    repository = ExperimentRepository("experiments", boto3.client("dynamodb"))
    stopped = repository.stop("exp").stopped_at
    assert stopped is not None
    query, s3 = duckdb_query(tmp_path), boto3.client("s3")
    week_later = stopped.astimezone(UTC).date() + timedelta(days=7)
    assert list(run_daily(repository, query, s3, "artifacts", today=week_later, engine="duckdb").reports) == [
        "exp"
    ]
    later = week_later + timedelta(days=1)
    assert run_daily(repository, query, s3, "artifacts", today=later, engine="duckdb").reports == {}


def test_the_handler_prepares_the_views_runs_the_queries_and_emits_the_kpis(
    aws,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    for key, value in {
        **aws.env(), "GLUE_DATABASE": "merchandiser_archive", "ATHENA_WORKGROUP": "merchandiser-reports",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    boto3.client("athena").create_work_group(Name="merchandiser-reports")
    started()
    from lambdas.experiment_report import handler
    from local_twin.functions import LambdaContext

    out = io.StringIO()
    with redirect_stdout(out):
        answer = handler.handler({"source": "aws.events"}, LambdaContext("experiment-report"))
    # moto's Athena runs no SQL (every result is empty): the wiring is what this checks
    assert answer["reports"] == ["exp"] and answer["kpis"].startswith("reports/kpis/")
    queries = boto3.client("athena").list_query_executions(WorkGroup="merchandiser-reports")[
        "QueryExecutionIds"
    ]
    assert len(queries) == 4  # the two views, the report, the KPIs
    assert latest_report(boto3.client("s3"), "artifacts", "exp")["engine"] == "athena"
    assert '"ExperimentReports"' in out.getvalue()
