"""POST /events through the real handler: validation, the envelope, and what lands on the stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event

ROUTE = Route("POST", "/events", "events_api")


@pytest.fixture
def post(aws, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    from lambdas.events_api import handler as module

    module.kinesis.cache_clear()

    def send(body: str | bytes) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else body.encode()
        event = proxy_event("POST", ROUTE, "/events", {}, "", {"Content-Type": "application/json"}, raw)
        response = module.handler(event, LambdaContext("events-api"))
        return response["statusCode"], json.loads(response["body"])

    yield send
    module.kinesis.cache_clear()


def stream_records(aws) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    shard = aws.kinesis.describe_stream(StreamName="events")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = aws.kinesis.get_shard_iterator(
        StreamName="events", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return aws.kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]


def test_events_are_put_on_the_stream_keyed_by_shopper(aws, post):
    # Given two events, one without an id or timestamp
    body = {
        "events": [
            {"user_id": "u1", "item_id": "i1", "event_type": "view"},
            {
                "event_id": "e2",
                "user_id": "u2",
                "item_id": "i2",
                "event_type": "purchase",
                "quantity": 2,
                "price": 9.5,
                "timestamp": "2026-11-22T10:00:00Z",
            },
        ]
    }
    # When posted
    status, answer = post(json.dumps(body))
    # Then both are accepted, the missing id was filled in, and the stream holds them keyed by user
    assert status == 202
    assert answer["accepted"] == 2 and answer["event_ids"][1] == "e2"
    records = stream_records(aws)
    assert [r["PartitionKey"] for r in records] == ["u1", "u2"]
    stored = json.loads(records[1]["Data"])
    assert stored["quantity"] == 2 and stored["schema_version"] == 1
    assert json.loads(records[0]["Data"])["event_id"] == answer["event_ids"][0]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ('{"events": [', 400, "not valid JSON"),
        ('{"events": []}', 422, "events"),
        ('{"events": [{"user_id": "u1", "event_type": "view"}]}', 422, "item_id"),
        ('{"events": [{"user_id": "u1", "item_id": "i1", "event_type": "teleport"}]}', 422, "event_type"),
        (
            '{"events": [{"user_id": "u1", "item_id": "i1", "event_type": "view", "quantity": "many"}]}',
            422,
            "quantity",
        ),
        ('{"events": [{"user_id": "../etc", "item_id": "i1", "event_type": "view"}]}', 422, "user_id"),
        (
            json.dumps({"events": [{"user_id": "u", "item_id": "i", "event_type": "view"}] * 501}),
            422,
            "events",
        ),
    ],
    ids=["malformed", "empty", "missing-item", "unknown-type", "wrong-type", "bad-id", "too-many"],
)
def test_bad_requests_get_a_4xx_with_a_message_and_nothing_is_put(aws, post, body, status, fragment):
    code, answer = post(body)
    assert code == status
    assert answer["error"] in ("MALFORMED_JSON", "VALIDATION_ERROR")
    assert fragment in answer["message"]
    assert stream_records(aws) == []


def test_a_missing_stream_is_a_503_the_caller_can_retry(aws, post, monkeypatch):
    monkeypatch.setenv("EVENTS_STREAM", "no-such-stream")
    code, answer = post('{"events": [{"user_id": "u1", "item_id": "i1", "event_type": "view"}]}')
    assert code == 503
    assert answer["error"] == "STREAM_UNAVAILABLE"


def test_the_documented_sample_body_is_accepted(aws, post):
    from pathlib import Path

    body = (Path(__file__).resolve().parent.parent / "events" / "post_events.json").read_text()
    status, answer = post(body)
    assert status == 202 and answer["accepted"] == 2
    records = stream_records(aws)
    assert [r["PartitionKey"] for r in records] == ["u-1042", "u-1042"]
    assert json.loads(records[1]["Data"])["event_id"] == "0f8e2a3c-5b9d-4e1f-a7c6-2d4b8e9f1a3d"
