"""The twin's event source mapping on moto: checkpoints, bisection, bounded retries and record age,
and, with the real processor behind it, events in = processed + dead-lettered."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local_twin.functions import LambdaContext
from local_twin.poller import KinesisPoller


def put(aws, payloads: list[bytes | dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(payloads), 500):
        records = [
            {"Data": p if isinstance(p, bytes) else json.dumps(p).encode(), "PartitionKey": "k"}
            for p in payloads[start : start + 500]
        ]
        aws.kinesis.put_records(StreamName="events", Records=records)


def view(n: int, user: str = "u1") -> dict[str, Any]:
    return {"event_id": f"e{n}", "user_id": user, "item_id": f"i{n}", "event_type": "view",
            "timestamp": "2026-11-22T10:00:00Z"}  # fmt: skip


def data(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["kinesis"]["data"])


class Recorder:
    """A function behind the mapping: stores what it was given, fails the way a test tells it to."""

    def __init__(self, crash_on: bytes | None = None, fail_once: bytes | None = None):
        self.crash_on, self.fail_once = crash_on, fail_once
        self.invocations: list[list[bytes]] = []
        self.stored: list[bytes] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        payloads = [data(r) for r in event["Records"]]
        self.invocations.append(payloads)
        if self.crash_on in payloads:
            raise MemoryError("the function crashed on this batch")
        for record in event["Records"]:
            if data(record) == self.fail_once:
                self.fail_once = None
                return {"batchItemFailures": [{"itemIdentifier": record["kinesis"]["sequenceNumber"]}]}
            self.stored.append(data(record))
        return {"batchItemFailures": []}


def poller(aws, invoke: Any, **kwargs: Any) -> KinesisPoller:  # type: ignore[no-untyped-def]
    return KinesisPoller(aws.kinesis, aws.sqs, "events", aws.queue_url, invoke=invoke, **kwargs)


def test_a_partial_failure_resumes_at_the_failed_record(aws):
    put(aws, [view(n) for n in range(5)])
    function = Recorder(fail_once=json.dumps(view(2)).encode())
    poller(aws, function).drain()
    assert [len(i) for i in function.invocations] == [5, 3]
    assert len(function.stored) == 5 and aws.dead_letters() == []


def test_a_function_error_bisects_until_the_poison_record_is_alone_then_parks_it(aws):
    # Given 8 records, one of which crashes the function whenever it is in the batch
    poison = json.dumps(view(5)).encode()
    put(aws, [view(n) for n in range(8)])
    function = Recorder(crash_on=poison)
    mapping = poller(aws, function, max_retries=2)
    # When the mapping delivers them
    mapping.drain()
    # Then the batch was halved down to the poison record, which was tried 1 + 2 times and parked,
    # and every other record was stored once
    assert sorted(function.stored) == sorted(json.dumps(view(n)).encode() for n in range(8) if n != 5)
    assert [batch for batch in function.invocations if batch == [poison]] == [[poison]] * 3
    [parked] = aws.dead_letters()
    assert parked["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert parked["KinesisBatchInfo"]["batchSize"] == 1
    assert mapping.stats.bisections == 3 and mapping.stats.records_exhausted == 1


def test_records_older_than_the_maximum_age_are_parked_without_an_invocation(aws):
    put(aws, [view(n) for n in range(3)])
    function = Recorder()
    mapping = poller(aws, function, clock=lambda: 4_000_000_000.0)
    mapping.drain()
    assert function.invocations == []
    [parked] = aws.dead_letters()
    assert parked["requestContext"]["condition"] == "RecordAgeExceeded"
    assert parked["KinesisBatchInfo"]["batchSize"] == 3


@pytest.fixture
def processor(aws, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    from lambdas.event_processor import handler as module

    module.processor.cache_clear()
    yield lambda event: module.handler(event, LambdaContext("event-processor"))
    module.processor.cache_clear()


def test_with_the_real_processor_every_event_is_processed_or_dead_lettered(aws, processor):
    # Given 250 records: events for 20 shoppers, some sent twice, some garbage
    good = [view(n, f"u{n % 20}") for n in range(200)]
    garbage: list[bytes | dict[str, Any]] = [
        b"not json",
        json.dumps(view(1) | {"event_type": "x"}).encode(),
    ] * 15
    put(aws, [*good, *good[:20], *garbage])
    # When the mapping drains the stream into the processor
    mapping = poller(aws, processor)
    mapping.drain()
    # Then each distinct event is in its shopper's session once, and each bad record is dead-lettered
    sessions = aws.dynamodb.Table("sessions")
    stored = sum(len(sessions.get_item(Key={"user_id": f"u{u}"})["Item"]["events"]) for u in range(20))
    dead = aws.dead_letters()
    assert stored == 200 and len(dead) == 30
    assert stored + len(dead) == len(good) + len(garbage)  # distinct events in = processed + dead-lettered
    assert mapping.stats.records_exhausted == 0


def test_the_mapping_and_the_archive_read_the_same_stream_independently(aws):
    # Firehose is a second reader: a record the function fails on is still archived
    import boto3

    from local_twin.archive import ArchiveConsumer

    put(aws, [view(n) for n in range(4)])
    archive = ArchiveConsumer(aws.kinesis, boto3.client("s3"), "events", "artifacts")
    function = Recorder(crash_on=json.dumps(view(3)).encode())
    mapping = poller(aws, function, max_retries=0, archive=archive)
    mapping.drain()
    [key] = mapping.flush_archive()
    assert key.startswith("events/year=") and archive.records_archived == 4
    assert len(function.stored) == 3 and mapping.stats.records_exhausted == 1
