"""The report over the archive in S3 as the twin writes it, and the same SQL through Athena (moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import Stubber

from local_twin.archive import ArchiveConsumer
from merchandiser.experiments.analysis import ReportRow
from merchandiser.experiments.report import (
    AthenaQueryError,
    AttributionWindows,
    Period,
    athena_report,
    query_athena,
    query_duckdb,
    report,
    report_sql,
)
from merchandiser.store import tombstone_key
from tests.experiment_archive import HOLDOUT_SPLIT, event, impression, known_archive, write_records

ATHENA_QUEUE = "http://motoapi.amazonaws.com/moto-api/static/athena/query-results"


def no_sleep(_: float) -> None:
    pass


def test_the_report_reads_the_twins_s3_archive(aws: Any, tmp_path: Path):
    # Given events put on the stream and archived by the twin's Firehose (a replay and garbage included)
    s3 = boto3.client("s3")
    archive = ArchiveConsumer(aws.kinesis, s3, "events", "artifacts")
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    pages = [
        impression("r1", "u1", "holdout", now, ["a", "b"]),
        impression("r2", "u2", "personalized", now, ["c"]),
    ]
    events = [
        event("e1", "u1", "a", "click", now + timedelta(minutes=1), "r1"),
        event("e2", "u2", "c", "purchase", now + timedelta(minutes=2), "r2", price=3.0, quantity=2),
        event("e3", "u2", "c", "click", now, "r-gone"),
        event("e4", "u1", "b", "click", now),
    ]
    records = [json.dumps(e).encode() for e in [*events, events[0]]] + [b"{garbage"]
    aws.kinesis.put_records(StreamName="events", Records=[{"Data": r, "PartitionKey": "k"} for r in records])
    archive.flush()
    # and the impressions beside them in the same layout, and an erasure tombstone (not an event)
    [page_file] = write_records(tmp_path, "impressions", pages)
    s3.upload_file(str(page_file), "artifacts", str(page_file.relative_to(tmp_path)))
    s3.put_object(Bucket="artifacts", Key=tombstone_key("u9"), Body=b"{}")
    # When the report reads the bucket
    result = report("exp", "s3://artifacts", definition=HOLDOUT_SPLIT, s3=s3)
    # Then it counts what happened, once
    holdout, personalized = result["variants"]["holdout"], result["variants"]["personalized"]
    assert (holdout["impressions"], holdout["clicks"], holdout["purchases"]) == (1, 1, 0)
    assert (personalized["impressions"], personalized["purchases"], personalized["revenue"]) == (1, 1, 6.0)
    assert result["unattributed"]["unknown_recommendation_id"]["clicks"] == 1
    assert result["unattributed"]["no_recommendation_id"]["clicks"] == 1
    # and a period that archive does not reach reads nothing
    empty = report(
        "exp", "s3://artifacts/", definition=HOLDOUT_SPLIT, s3=s3, period=Period(now.date() + timedelta(30))
    )
    assert empty["variants"]["holdout"]["impressions"] == 0


def test_athena_runs_the_same_sql_and_gives_the_same_report(aws: Any, tmp_path: Path):
    # Given the known archive, and Athena answering the report's SQL with what DuckDB computes from it
    known_archive(tmp_path)
    sql = report_sql("exp", Period(), AttributionWindows())
    rows = query_duckdb(sql, tmp_path)
    as_text = [[None if value is None else str(value) for value in row] for row in rows]
    columns = [{"Name": name, "Type": "varchar"} for name in ReportRow._fields]
    result_set = [{"Data": [{"VarCharValue": name} for name in ReportRow._fields]}] + [
        {"Data": [{} if value is None else {"VarCharValue": value} for value in row]} for row in as_text
    ]
    requests.post(ATHENA_QUEUE, json={"results": [{"rows": result_set, "column_info": columns}]}, timeout=5)
    athena = boto3.client("athena")
    # When the report runs on Athena
    result = athena_report(
        "exp",
        athena=athena,
        database="merchandiser",
        output_location="s3://artifacts/athena/",
        definition=HOLDOUT_SPLIT,
        catalogue_size=10,
        sleep=no_sleep,
    )
    # Then it is the DuckDB report, and Athena was sent the very SQL DuckDB ran
    assert result == report("exp", tmp_path, definition=HOLDOUT_SPLIT, catalogue_size=10)
    [execution_id] = athena.list_query_executions()["QueryExecutionIds"]
    assert athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Query"] == sql


def test_a_failed_or_endless_athena_query_raises_with_its_reason():
    athena = boto3.client("athena", region_name="us-east-1")
    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
        stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: events"}
                }
            },
        )
        with pytest.raises(AthenaQueryError, match="q1 FAILED: TABLE_NOT_FOUND: events"):
            query_athena("SELECT 1", athena, "db", "s3://out/", sleep=no_sleep)
    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q2"})
        for _ in range(3):
            stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}})
        with pytest.raises(AthenaQueryError, match="q2 still RUNNING after 2 s"):
            query_athena(
                "SELECT 1", athena, "db", "s3://out/", poll_seconds=1, timeout_seconds=2, sleep=no_sleep
            )
