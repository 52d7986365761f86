"""The event processor on moto: one session write per shopper, garbage dead-lettered, counts balance."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from local_twin.functions import LambdaContext
from merchandiser.settings import EventProcessorSettings
from merchandiser.store import FeatureStore

EVENTS = Path(__file__).resolve().parent.parent / "events"


def record(payload: bytes | dict[str, Any], sequence: int, key: str = "u1") -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {
        "kinesis": {
            "partitionKey": key,
            "sequenceNumber": f"{sequence:056d}",
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1.0,
        },
        "eventSource": "aws:kinesis",
        "eventID": f"shardId-000000000000:{sequence:056d}",
    }


def event(
    event_id: str, user_id: str = "u1", item_id: str = "i1", event_type: str = "view"
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "item_id": item_id,
        "event_type": event_type,
        "timestamp": "2026-11-22T10:00:00Z",
    }


@pytest.fixture
def handler(aws, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    from lambdas.event_processor import handler as module

    module.processor.cache_clear()
    yield lambda batch: module.handler(batch, LambdaContext("event-processor"))
    module.processor.cache_clear()


def session(aws, user_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return aws.dynamodb.Table("sessions").get_item(Key={"user_id": user_id}).get("Item", {})


def test_sample_kinesis_event_updates_the_session(aws, handler):
    # Given the sample Lambda event for one view (tests/events/kinesis_batch.json)
    batch = json.loads((EVENTS / "kinesis_batch.json").read_text())
    # When the processor handles it
    response = handler(batch)
    # Then nothing failed and the shopper's session holds the view with its weight and a TTL
    assert response == {"batchItemFailures": []}
    stored = session(aws, "u1")
    assert [(e["item_id"], e["event_type"], float(e["weight"])) for e in stored["events"]] == [
        ("i1", "view", 1.0)
    ]
    assert int(stored["expires_at"]) > 1_700_000_000


def test_one_write_per_shopper_per_batch_and_purchases_recorded(aws, handler, monkeypatch):
    # Given 100 events over 20 shoppers, some purchases
    batch = {
        "Records": [
            record(
                event(
                    f"e{n}",
                    user_id=f"u{n % 20}",
                    item_id=f"i{n}",
                    event_type="purchase" if n % 10 == 0 else "view",
                ),
                n,
                key=f"u{n % 20}",
            )
            for n in range(100)
        ]
    }
    calls = []
    original = FeatureStore.append_session
    monkeypatch.setattr(
        FeatureStore, "append_session", lambda self, *a, **k: (calls.append(a[0]), original(self, *a, **k))[1]
    )
    # When processed
    assert handler(batch) == {"batchItemFailures": []}
    # Then DynamoDB saw one update per shopper (0.2 writes per event), and purchases are in the set
    assert sorted(calls) == sorted(f"u{n}" for n in range(20))
    assert session(aws, "u0")["purchased"] == {"i0", "i20", "i40", "i60", "i80"}
    assert len(session(aws, "u3")["events"]) == 5


def test_duplicates_are_counted_once(aws, handler):
    batch = {"Records": [record(event("same"), 1), record(event("same"), 2), record(event("other"), 3)]}
    handler(batch)
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["same", "other"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not JSON"),
        (json.dumps(event("e1", event_type="teleport")).encode(), "event_type"),
        (json.dumps({"event_id": "e1", "user_id": "u1"}).encode(), "item_id: Field required"),
        (json.dumps(event("e1") | {"padding": "x" * 5000}).encode(), "exceeds 4096"),
        (json.dumps([1, 2]).encode(), "JSON object"),
    ],
    ids=["malformed-json", "unknown-event-type", "missing-fields", "oversized", "not-an-object"],
)
def test_bad_records_land_on_the_dead_letter_queue_with_payload_and_reason(aws, handler, payload, reason):
    # Given a good event and a bad record in one batch
    batch = {"Records": [record(event("good"), 1), record(payload, 2)]}
    # When processed
    response = handler(batch)
    # Then the batch does not fail (retrying garbage cannot help), the good event is stored,
    # and the bad one is on the queue with its raw payload and the reason
    assert response == {"batchItemFailures": []}
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["good"]
    [dead] = aws.dead_letters()
    assert reason in dead["reason"]
    assert base64.b64decode(dead["payload_base64"]) == payload
    assert dead["sequence_number"] == f"{2:056d}"


def test_a_failed_write_reports_that_shoppers_records_for_retry(aws, handler, monkeypatch):
    # Given DynamoDB refuses writes for shopper u2 only
    original = FeatureStore.append_session

    def flaky(self, user_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        if user_id == "u2":
            raise RuntimeError("ProvisionedThroughputExceededException")
        return original(self, user_id, *args, **kwargs)

    monkeypatch.setattr(FeatureStore, "append_session", flaky)
    batch = {
        "Records": [
            record(event("a", "u1"), 1),
            record(event("b", "u2"), 2),
            record(event("c", "u2"), 3),
            record(b"garbage", 4),
        ]
    }
    # When processed
    response = handler(batch)
    # Then exactly u2's records are reported as failures, and in = processed + dead-lettered + failed
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [f"{2:056d}", f"{3:056d}"]
    assert len(session(aws, "u1")["events"]) == 1
    assert len(aws.dead_letters()) == 1
    assert 1 + 1 + len(failed) == 4


def test_settings_come_from_the_environment(aws, handler):
    settings = EventProcessorSettings.from_env()
    assert settings.dead_letter_queue_url == aws.queue_url
    assert settings.session_ttl_seconds == 7 * 24 * 3600
