"""The event processor on moto through its real handler: one write per shopper per batch, each event
counted once across batches, garbage dead-lettered with its reason, and the counts always balance."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local_twin.bench_events import Instrumented
from merchandiser.settings import EventProcessorSettings
from merchandiser.store import (
    MAX_WINDOW_HOURS,
    SEEN_EVENT_IDS_KEPT,
    SESSION_EVENTS_KEPT,
    TRENDING_PARTITIONS,
    FeatureStore,
    bucket_key,
    count_key,
)
from merchandiser.stream import TrendingCompactor

EVENTS = Path(__file__).resolve().parent.parent / "events"
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC).timestamp()


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
    event_id: str,
    user_id: str = "u1",
    item_id: str = "i1",
    event_type: str = "view",
    timestamp: str = "2026-11-22T10:00:00Z",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "item_id": item_id,
        "event_type": event_type,
        "timestamp": timestamp,
    }


def batch_of(events: list[dict[str, Any]], first_sequence: int = 0) -> dict[str, Any]:
    return {"Records": [record(e, first_sequence + n, e["user_id"]) for n, e in enumerate(events)]}


@pytest.fixture
def handler(aws, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    instrumented = Instrumented(clock=lambda: NOW)
    yield instrumented
    instrumented.module.processor.cache_clear()


def session(aws, user_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return aws.dynamodb.Table("sessions").get_item(Key={"user_id": user_id}).get("Item", {})


def trending(handler, window_hours: int = 1) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """What serving reads once the compactor has run (in AWS, within the minute)."""
    TrendingCompactor(handler.store, clock=lambda: NOW).run()
    return dict(handler.store.trending(datetime.fromtimestamp(NOW, UTC), window_hours))


def failed(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


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
    assert int(stored["expires_at"]) == int(NOW) + 7 * 24 * 3600


def test_100_events_over_20_shoppers_cost_one_read_20_session_writes_a_count_add_per_item_and_one_stats_add(
    aws, handler
):
    # Given 100 events over 20 shoppers in one hour, on 100 items, some purchases
    batch = batch_of(
        [event(f"e{n}", f"u{n % 20}", f"i{n}", "purchase" if n % 10 == 0 else "view") for n in range(100)]
    )
    # When processed
    assert handler(batch) == {"batchItemFailures": []}
    # Then DynamoDB saw one BatchGetItem, one PutItem per shopper, the 100 (hour, item) ADDs on one-item
    # counts in two transactions (99 counts and the dirty set's ADD each, at most 100 actions) and one
    # UpdateItem for the stream figures
    assert handler.calls == {"BatchGetItem": 1, "PutItem": 20, "TransactWriteItems": 2, "UpdateItem": 1}
    assert handler.outcome.stats_writes == 1 and handler.outcome.counter_writes == 2
    assert session(aws, "u0")["purchased"] == {"i0", "i20", "i40", "i60", "i80"}
    assert len(session(aws, "u3")["events"]) == 5
    assert handler.store.dirty_hours() == {bucket_key(datetime.fromtimestamp(NOW, UTC))}
    counts = trending(handler)
    assert counts["i0"] == 8.0 and counts["i1"] == 1.0 and len(counts) == 100


def test_a_hot_item_is_one_small_item_per_hour_and_the_hours_items_spread_over_the_partitions(aws, handler):
    # Given 40 batches of 25 events, each with views of the same hot item among other items
    for number in range(40):
        events = [
            event(f"b{number}-{n}", f"u{n}", "hot" if n % 2 == 0 else f"i{number}-{n}") for n in range(25)
        ]
        assert handler(batch_of(events, first_sequence=number * 25)) == {"batchItemFailures": []}
    # Then each batch wrote its ADDs (the hot item and 12 others) and the dirty set's in one transaction,
    # beside its one write of the stream figures
    assert handler.calls["TransactWriteItems"] == 40 and handler.calls["UpdateItem"] == 40
    # And the hot item's count is one item of a few bytes, whatever the load: 13 views in each of 40 batches
    hour = bucket_key(datetime.fromtimestamp(NOW, UTC))
    table = aws.dynamodb.Table("counters")
    assert float(table.get_item(Key=count_key(hour, "hot"))["Item"]["count"]) == 13 * 40
    # And the hour's 481 items spread over every write partition
    keys = [count_key(hour, f"i{b}-{n}")["bucket"] for b in range(40) for n in range(1, 25, 2)]
    assert len({key for key in keys}) == TRENDING_PARTITIONS
    # And the compacted hour reads back the exact total
    assert trending(handler)["hot"] == 13 * 40


def test_duplicates_within_a_batch_are_counted_once(aws, handler):
    batch = {"Records": [record(event("same"), 1), record(event("same"), 2), record(event("other"), 3)]}
    handler(batch)
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["same", "other"]


def test_a_redelivered_batch_changes_nothing_and_costs_only_the_read(aws, handler):
    # Given a batch already processed (Kinesis delivers at least once)
    batch = batch_of([event(f"e{n}", f"u{n % 3}", f"i{n % 4}") for n in range(12)])
    handler(batch)
    before = {user: session(aws, user) for user in ("u0", "u1", "u2")}
    trending_before = trending(handler)
    handler.calls.clear()
    # When it is delivered again
    response = handler(batch)
    # Then nothing is written: sessions and trending counters are as they were
    assert response == {"batchItemFailures": []}
    assert handler.calls == {"BatchGetItem": 1}
    assert {user: session(aws, user) for user in ("u0", "u1", "u2")} == before
    assert trending(handler) == trending_before and handler.store.dirty_hours() == set()


def test_out_of_order_events_are_kept_in_event_time_order(aws, handler):
    # Given a later event first, then two earlier ones in a later batch
    handler(batch_of([event("late", item_id="i3", timestamp="2026-11-22T10:05:00Z")]))
    handler(
        batch_of(
            [
                event("mid", item_id="i2", timestamp="2026-11-22T10:03:00Z"),
                event("early", item_id="i1", timestamp="2026-11-22T10:01:00Z"),
            ],
            first_sequence=10,
        )
    )
    # Then the session is in event-time order, and serving sees the latest first
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["early", "mid", "late"]
    assert [e.item_id for e in handler.store.shopper("u1").session] == ["i3", "i2", "i1"]


def test_the_session_is_bounded_and_remembers_more_ids_than_events(aws, handler):
    # Given more events than a session keeps, over several batches
    for start in range(0, 250, 50):
        events = [
            event(f"e{n:03d}", item_id=f"i{n}", timestamp=f"2026-11-22T{8 + n // 60:02d}:{n % 60:02d}:00Z")
            for n in range(start, start + 50)
        ]
        handler(batch_of(events, first_sequence=start))
    stored = session(aws, "u1")
    # Then it holds the most recent events and ids, no more
    assert len(stored["events"]) == SESSION_EVENTS_KEPT
    assert stored["events"][-1]["event_id"] == "e249" and stored["events"][0]["event_id"] == "e200"
    assert len(stored["seen"]) == SEEN_EVENT_IDS_KEPT and stored["seen"][0] == "e050"


@pytest.mark.parametrize(
    ("payload", "code", "fragment"),
    [
        (b"{not json", "MALFORMED_JSON", "not JSON"),
        (json.dumps(event("e1", event_type="teleport")).encode(), "UNKNOWN_EVENT_TYPE", "event_type"),
        (json.dumps({"event_id": "e1", "user_id": "u1"}).encode(), "MISSING_FIELD", "item_id: Field"),
        (json.dumps(event("e1") | {"padding": "x" * 5000}).encode(), "OVERSIZED", "exceeds 4096"),
        (json.dumps([1, 2]).encode(), "NOT_AN_OBJECT", "JSON object"),
        (json.dumps(event("e1") | {"colour": "red"}).encode(), "UNKNOWN_FIELD", "colour"),
        (json.dumps(event("e1") | {"quantity": 0}).encode(), "INVALID_FIELD", "quantity"),
    ],
    ids=["malformed-json", "unknown-event-type", "missing-fields", "oversized", "not-an-object",
         "unknown-field", "invalid-field"],
)  # fmt: skip
def test_bad_records_land_on_the_dead_letter_queue_with_payload_and_reason(
    aws, handler, payload, code, fragment
):
    # Given a good event and a bad record in one batch
    batch = {"Records": [record(event("good"), 1), record(payload, 2)]}
    # When processed
    response = handler(batch)
    # Then the batch does not fail (retrying garbage cannot help), the good event is stored,
    # and the bad one is on the queue with its raw payload and the reason
    assert response == {"batchItemFailures": []}
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["good"]
    [dead] = aws.dead_letters()
    assert dead["reason_code"] == code
    assert fragment in dead["reason"]
    assert base64.b64decode(dead["payload_base64"]) == payload
    assert dead["sequence_number"] == f"{2:056d}"


def test_a_failed_write_reports_that_shoppers_records_and_the_retry_counts_them_once(
    aws, handler, monkeypatch
):
    # Given DynamoDB refuses writes for shopper u2 only
    original = FeatureStore.write_session

    def flaky(self, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        if state.user_id == "u2":
            raise RuntimeError("ProvisionedThroughputExceededException")
        return original(self, state, *args, **kwargs)

    monkeypatch.setattr(FeatureStore, "write_session", flaky)
    batch = {
        "Records": [
            record(event("a", "u1"), 1),
            record(event("b", "u2"), 2),
            record(event("c", "u2"), 3),
            record(b"garbage", 4),
            record(event("d", "u3"), 5),
        ]
    }
    # When processed
    response = handler(batch)
    # Then exactly u2's records are reported as failures, and in = processed + dead-lettered + failed
    assert failed(response) == [f"{2:056d}", f"{3:056d}"]
    assert len(session(aws, "u1")["events"]) == 1 and session(aws, "u2") == {}
    assert len(aws.dead_letters()) == 1
    outcome = handler.outcome
    assert (outcome.processed, outcome.dead_lettered, outcome.failed) == (2, 1, 2)
    # When the mapping retries from the lowest failed record (u3's event comes again) and DynamoDB is back
    monkeypatch.setattr(FeatureStore, "write_session", original)
    response = handler({"Records": batch["Records"][1:]})
    # Then u2's events are stored, u3's is a duplicate, and the garbage is dead-lettered once more:
    # the dead-letter queue keys on the sequence number, so a consumer can tell a redelivery
    assert failed(response) == []
    assert [e["event_id"] for e in session(aws, "u2")["events"]] == ["b", "c"]
    assert len(session(aws, "u3")["events"]) == 1
    outcome = handler.outcome
    assert (outcome.processed, outcome.duplicates, outcome.dead_lettered) == (2, 1, 1)


def test_a_concurrent_writer_is_detected_and_both_updates_survive(aws, handler, monkeypatch):
    # Given another writer adds to u1's session right after the processor read it
    original = FeatureStore.read_sessions
    interfered: list[bool] = []

    def read_then_interfere(self, user_ids):  # type: ignore[no-untyped-def]
        states = original(self, user_ids)
        if not interfered:
            interfered.append(True)
            handler.store.append_session("u1", [], ["bought-elsewhere"], expires_at=1)
        return states

    monkeypatch.setattr(FeatureStore, "read_sessions", read_then_interfere)
    # When a batch for u1 is processed
    response = handler(batch_of([event("e1")]))
    # Then the version check failed once, the processor re-read and wrote again, and nothing was lost
    assert response == {"batchItemFailures": []}
    assert handler.outcome.conflicts == 1
    stored = session(aws, "u1")
    assert stored["purchased"] == {"bought-elsewhere"} and [e["event_id"] for e in stored["events"]] == ["e1"]


def test_a_dead_letter_queue_refusal_sends_the_record_back_for_retry(aws, handler, monkeypatch):
    sqs = handler.module.processor(EventProcessorSettings.from_env()).dead_letters._sqs
    monkeypatch.setattr(
        sqs, "send_message_batch", lambda **kwargs: {"Failed": [{"Id": "0", "Code": "InternalError"}]}
    )
    response = handler({"Records": [record(event("good"), 1), record(b"garbage", 2)]})
    assert failed(response) == [f"{2:056d}"]
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["good"]


def test_events_too_old_for_any_trending_window_are_not_counted(aws, handler):
    handler(batch_of([event("old", item_id="i-old", timestamp="2026-11-01T10:00:00Z"), event("new")]))
    assert trending(handler, MAX_WINDOW_HOURS) == {"i1": 1.0}
    assert len(session(aws, "u1")["events"]) == 2  # the session still has it


def test_counts_always_balance_over_a_seeded_mess(aws, handler, monkeypatch):
    # Given batches mixing good events, repeats, garbage and a shopper whose writes fail
    rng = random.Random(7)
    original = FeatureStore.write_session
    monkeypatch.setattr(
        FeatureStore,
        "write_session",
        lambda self, state, *a, **k: (
            (_ for _ in ()).throw(RuntimeError("throttled"))
            if state.user_id == "u4"
            else original(self, state, *a, **k)
        ),
    )
    payloads: list[bytes | dict[str, Any]] = []
    for n in range(300):
        roll = rng.random()
        if roll < 0.1:
            payloads.append(b'{"broken": ')
        elif roll < 0.2 and n:
            payloads.append(event(f"e{rng.randrange(n)}", f"u{rng.randrange(6)}"))
        else:
            payloads.append(event(f"e{n}", f"u{rng.randrange(6)}", f"i{rng.randrange(30)}"))
    for start in range(0, 300, 100):
        response = handler(
            {"Records": [record(p, start + i) for i, p in enumerate(payloads[start : start + 100])]}
        )
        outcome = handler.outcome
        # Then every record of every batch is accounted for exactly once
        assert outcome.records_in == 100
        assert outcome.processed + outcome.duplicates + outcome.dead_lettered + outcome.failed == 100
        assert outcome.failed == len(failed(response))


def test_settings_come_from_the_environment(aws, handler):
    settings = EventProcessorSettings.from_env()
    assert settings.dead_letter_queue_url == aws.queue_url
    assert settings.session_ttl_seconds == 7 * 24 * 3600


def test_an_unreachable_dead_letter_queue_sends_the_bad_records_back_and_keeps_the_good(
    aws, handler, monkeypatch
):
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", aws.queue_url + "-missing")
    missing = Instrumented(clock=lambda: NOW)
    response = missing({"Records": [record(event("good"), 1), record(b"garbage", 2), record(b"[]", 3)]})
    assert failed(response) == [f"{2:056d}", f"{3:056d}"]
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["good"]
    assert missing.outcome.dead_lettered == 0 and missing.outcome.processed == 1


def test_a_session_written_before_versions_is_taken_over(aws, handler):
    # Given a session item in the old shape (appended events, no version, no seen ids)
    aws.dynamodb.Table("sessions").put_item(
        Item={"user_id": "u1", "events": [{"event_id": "old", "item_id": "i0", "event_type": "view",
              "weight": 1, "ts": 1_795_000_000}], "expires_at": 1}
    )  # fmt: skip
    # When new events arrive twice
    handler(batch_of([event("new")]))
    handler(batch_of([event("new")]))
    # Then the old events are kept, the new one is stored once and the session has a version
    stored = session(aws, "u1")
    assert [e["event_id"] for e in stored["events"]] == ["old", "new"] and stored["version"] == 0


def test_a_failed_session_read_sends_the_whole_batch_back_untouched(aws, handler, monkeypatch):
    def throttled(self, user_ids):  # type: ignore[no-untyped-def]
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(FeatureStore, "read_sessions", throttled)
    response = handler(batch_of([event("a", "u1"), event("b", "u2")]))
    assert failed(response) == [f"{0:056d}", f"{1:056d}"]
    assert session(aws, "u1") == {} and handler.outcome.processed == 0


def test_a_failed_count_keeps_the_sessions_and_is_counted_as_uncounted(aws, handler, monkeypatch):
    # Counters are best effort: the events are in their sessions, so a retry could not recount them
    def throttled(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("ThrottlingException")

    with monkeypatch.context() as patched:
        patched.setattr(FeatureStore, "add_counts", throttled)
        batch = [event("a", "u1"), event("b", "u2", item_id="i2"), event("c", "u3", item_id="i2")]
        assert handler(batch_of(batch)) == {"batchItemFailures": []}
    # the transaction is all or nothing: its three events are uncounted, their sessions kept
    assert handler.outcome.processed == 3 and handler.outcome.uncounted == 3
    assert session(aws, "u2")["events"] and trending(handler) == {}
    # and the hour's next batch is counted as usual
    handler(batch_of([event("d", "u4")], first_sequence=10))
    assert trending(handler) == {"i1": 1.0}


def test_the_stream_figures_count_each_processed_event_once_in_its_minute(aws, handler):
    # Given two batches, the second a redelivery of the first plus one new event
    first = [event("a", "u1"), event("b", "u2", timestamp="2026-11-22T10:20:00Z")]
    handler(batch_of(first))
    handler(batch_of([*first, event("c", "u3")], first_sequence=10))
    # When the figures are read at the processing time
    figures = handler.store.stream_figures(datetime.fromtimestamp(NOW, UTC))
    # Then the minute of processing holds 3 events (the replays are not counted), the hour 3, and the
    # freshness is that of the last batch: processed at NOW, its newest event 10:00
    assert figures.minutes[-1] == (datetime(2026, 11, 22, 10, 30, tzinfo=UTC), 3)
    assert figures.events_last_hour == 3 and len(figures.minutes) == 60
    shown = figures.as_dict(datetime.fromtimestamp(NOW + 5, UTC))
    assert shown["processed_at"] == "2026-11-22T10:30:00+00:00"
    assert shown["lag_seconds"] == 30 * 60 and shown["seconds_since_processed"] == 5
    assert shown["events_per_minute"] == 0.05


def test_a_failed_stats_write_keeps_the_sessions_and_the_batch_succeeds(aws, handler, monkeypatch):
    # The figures are for staff: a throttled write must not send the shoppers' events back
    def throttled(self, *args):  # type: ignore[no-untyped-def]
        raise RuntimeError("ThrottlingException")

    monkeypatch.setattr(FeatureStore, "record_batch", throttled)
    response = handler(batch_of([event("a", "u1")]))
    assert response == {"batchItemFailures": []}
    assert handler.outcome.processed == 1 and handler.outcome.stats_writes == 0
    assert handler.store.stream_figures(datetime.fromtimestamp(NOW, UTC)).events_last_hour == 0


def impression_record(recommendation_id: str, items: int = 10) -> dict[str, Any]:
    return {
        "record_type": "impression",
        "recommendation_id": recommendation_id,
        "user_id": "u1",
        "surface": "rank",
        "experiment": "",
        "variant": "production",
        "model_version": "m-1",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "items": [{"item_id": f"item-{n:04d}", "position": n, "source": "request"} for n in range(items)],
    }


def test_impressions_on_the_stream_are_counted_and_skipped_never_dead_lettered(aws, handler):
    # Given a batch of events and impression records, one of them a 1,000-item page larger than any event
    records = [
        record(event("e1"), 0),
        record(impression_record("r1"), 1),
        record(impression_record("r2", items=1000), 2),
        record(event("e2", item_id="i2"), 3),
    ]
    assert len(base64.b64decode(records[2]["kinesis"]["data"])) > 4096
    # When the processor handles it
    response = handler({"Records": records})
    # Then the events are processed, the impressions counted and skipped, nothing fails or is dead-lettered
    assert response == {"batchItemFailures": []} and aws.dead_letters() == []
    outcome = handler.outcome
    assert (outcome.processed, outcome.impressions, outcome.dead_lettered, outcome.failed) == (2, 2, 0, 0)
    assert (
        outcome.records_in
        == outcome.processed + outcome.duplicates + outcome.dead_lettered + outcome.impressions
    )
    assert [e["event_id"] for e in session(aws, "u1")["events"]] == ["e1", "e2"]


def test_an_oversized_record_that_is_not_an_impression_is_still_dead_lettered(aws, handler):
    payload = {**event("e1"), "context": {"note": "x" * 5000}}
    handler({"Records": [record(payload, 0), record(b"{" + b"x" * 5000, 1)]})
    assert [dead["reason_code"] for dead in aws.dead_letters()] == ["OVERSIZED", "OVERSIZED"]
    assert handler.outcome.impressions == 0
