"""The experiments admin routes through their real handler, on moto: start, read, list, stop, report, and
every refusal with its status and message."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from merchandiser.api import ExperimentList, ExperimentReport, ExperimentStopped
from merchandiser.experiments import Experiment, ExperimentRepository, archive_report, write_report
from tests.experiment_archive import HOLDOUT_SPLIT, known_archive

Call = Callable[..., tuple[int, dict[str, Any]]]
DEFINITION = {
    "name": "home-test",
    "surfaces": ["home"],
    "variants": [
        {"name": "personalized", "share": 0.5},
        {"name": "holdout", "share": 0.5, "policy": "popularity"},
    ],
}


@pytest.fixture
def call(aws, monkeypatch: pytest.MonkeyPatch) -> Call:  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    from lambdas.experiments import handler

    handler.repository.cache_clear()
    handler.s3.cache_clear()

    def send(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        resource = "/experiments"
        params = {}
        parts = path.strip("/").split("/")
        if len(parts) >= 2:
            resource, params = "/experiments/{name}", {"name": parts[1]}
        if len(parts) == 3:
            resource = "/experiments/{name}/report"
        raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        event = proxy_event(method, Route(method, resource, "experiments"), path, params, "", headers, raw)
        response = handler.handler(event, LambdaContext("experiments"))
        return response["statusCode"], json.loads(response["body"])

    return send


def test_an_experiment_is_started_read_listed_and_stopped(call: Call) -> None:
    # Given a valid definition, When it is PUT
    status, stored = call("PUT", "/experiments/home-test", DEFINITION)
    # Then it is stored and answered as stored, running
    assert status == 200 and Experiment.model_validate(stored).status == "running"
    assert call("GET", "/experiments/home-test") == (200, stored)
    status, listing = call("GET", "/experiments")
    assert status == 200 and [e.name for e in ExperimentList.model_validate(listing).experiments] == [
        "home-test"
    ]
    # When it is stopped, Then its definition stays, stopped, with when it ran
    status, stopped = call("DELETE", "/experiments/home-test")
    assert status == 200 and ExperimentStopped.model_validate(stopped).status == "stopped"
    assert stopped["started_at"] and stopped["stopped_at"] >= stopped["started_at"]
    assert call("GET", "/experiments/home-test")[1]["status"] == "stopped"
    # And another experiment may now take its surface
    assert call("PUT", "/experiments/other", {**DEFINITION, "name": "other"})[0] == 200


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        (
            {"variants": [{"name": "a", "share": 0.6}, {"name": "b", "share": 0.6}]},
            "INVALID_EXPERIMENT",
            "sum to 1.2",
        ),
        ({"variants": [{"name": "a", "share": 1.0, "policy": "random"}]}, "INVALID_EXPERIMENT", "policy"),
        ({"variants": []}, "INVALID_EXPERIMENT", "variants"),
        ({"surfaces": ["checkout"]}, "INVALID_EXPERIMENT", "surfaces.0"),
        ({"name": "another-name"}, "INVALID_EXPERIMENT", "differs from the path's 'home-test'"),
    ],
)
def test_a_bad_definition_is_a_422_naming_the_problem(
    call: Call, changes: dict[str, Any], code: str, message: str
) -> None:
    status, answer = call("PUT", "/experiments/home-test", {**DEFINITION, **changes})
    assert status == 422 and answer["error"] == code and message in answer["message"], answer
    assert call("GET", "/experiments/home-test")[0] == 404  # nothing was written


def test_a_second_experiment_on_a_running_ones_surface_is_a_422_conflict(call: Call) -> None:
    assert call("PUT", "/experiments/home-test", DEFINITION)[0] == 200
    status, answer = call("PUT", "/experiments/second", {**DEFINITION, "name": "second"})
    assert status == 422 and answer["error"] == "SURFACE_CONFLICT" and "'home-test'" in answer["message"]


def test_malformed_bodies_and_unknown_names_are_refused_with_a_message(call: Call) -> None:
    status, answer = call("PUT", "/experiments/home-test", b"{not json")
    assert status == 400 and answer["error"] == "MALFORMED_JSON"
    for method, path in (
        ("GET", "/experiments/nobody"),
        ("DELETE", "/experiments/nobody"),
        ("GET", "/experiments/nobody/report"),
    ):
        status, answer = call(method, path)
        assert status == 404 and answer["error"] == "NOT_FOUND" and "nobody" in answer["message"], (
            method,
            path,
        )
    status, answer = call("GET", "/experiments/Bad%20Name")
    assert status == 422 and answer["error"] == "VALIDATION_ERROR"


def test_in_aws_the_report_is_the_daily_jobs_latest(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    assert call("PUT", "/experiments/home-test", DEFINITION)[0] == 200
    # Given no daily report yet: a 404 that says when there will be one
    status, answer = call("GET", "/experiments/home-test/report")
    assert status == 404 and "daily report job" in answer["message"]
    # When the daily job has written one, Then the route answers it as written
    written: dict[str, Any] = {
        "experiment": "home-test", "variants": {}, "comparisons": [], "sample_ratio_p_value": None,
        "sample_ratio_mismatch": False, "unattributed": {},
        "period": {"start": "2026-11-01", "end": "2026-11-02"},
        "engine": "athena", "generated_at": "2026-11-03T02:30:00+00:00",
    }  # fmt: skip
    write_report(boto3.client("s3"), "artifacts", "home-test", written, date(2026, 11, 3))
    assert call("GET", "/experiments/home-test/report") == (200, written)


def test_on_the_twin_the_report_is_computed_over_the_archive_bucket(
    call: Call,
    aws,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    # Given the known archive in the bucket and its experiment stored (started before its pages)
    known_archive(tmp_path)
    s3 = boto3.client("s3")
    for path in tmp_path.rglob("*.jsonl.gz"):
        s3.upload_file(str(path), "artifacts", path.relative_to(tmp_path).as_posix())
    table = boto3.client("dynamodb")
    table.put_item(
        TableName="experiments",
        Item={
            "name": {"S": "exp"},
            "definition": {"S": HOLDOUT_SPLIT.model_dump_json()},
            "status": {"S": "running"},
            "started_at": {"S": "2026-11-10T00:00:00+00:00"},
        },
    )
    monkeypatch.setenv("EXPERIMENT_REPORT_SOURCE", "archive")
    # When the report is asked for
    status, report = call("GET", "/experiments/exp/report")
    # Then DuckDB computed it over the bucket, from the day the experiment started
    assert status == 200, report
    ExperimentReport.model_validate(report)
    assert report["engine"] == "duckdb" and report["period"]["start"] == "2026-11-10"
    assert (
        report["variants"]["holdout"]["clicks"] == 2
        and report["variants"]["personalized"]["impressions"] == 2
    )
    assert report["unattributed"]["unknown_recommendation_id"]["clicks"] == 1
    # and its per-day chart shows the last two weeks, in which these pages are not
    assert report["days"] == []
    # When it is computed two days after the pages, Then their day is charted, counted as the KPIs count
    stored = ExperimentRepository("experiments", table).stored("exp")
    later = archive_report(stored, s3, "artifacts", now=datetime(2026, 11, 12, tzinfo=UTC))
    [day] = later["days"]
    assert day["day"] == "2026-11-10" and day["variants"]["holdout"]["clicks"] == 2
    assert later["variants"] == report["variants"]
