"""The impression log: a page's record is queued without waiting, put by a background thread in batches,
and every record that never reaches the stream is counted."""

from __future__ import annotations

import json
import threading
from typing import Any

from merchandiser.serving import ImpressionLog, impression_record

PAGE = {
    "recommendation_id": "r1",
    "user_id": "u1",
    "surface": "home",
    "experiment": "exp",
    "variant": "holdout",
    "model_version": "m-1",
    "items": [{"item_id": "a", "source": "popularity"}, {"item_id": "b", "source": "new arrival"}],
}


class FakeKinesis:
    """Answers PutRecords like Kinesis: ``refusals`` says how many times a record (by recommendation id)
    is refused before it is taken; ``hold`` keeps a call waiting, like a slow stream."""

    def __init__(self, refusals: dict[str, int] | None = None, error: Exception | None = None):
        self.calls: list[list[dict[str, Any]]] = []
        self.refusals = dict(refusals or {})
        self.error = error
        self.hold = threading.Event()
        self.hold.set()

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.hold.wait()
        self.calls.append(Records)
        if self.error is not None:
            raise self.error
        results = []
        for record in Records:
            page = json.loads(record["Data"])["recommendation_id"]
            if self.refusals.get(page, 0) > 0:
                self.refusals[page] -= 1
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                results.append({"SequenceNumber": "1"})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def page(n: int) -> dict[str, Any]:
    return {**impression_record(PAGE, None, 0.0), "recommendation_id": f"r{n}"}


def test_the_record_is_what_the_report_reads_with_a_team_per_item_when_interleaved() -> None:
    record = impression_record(PAGE, ["A", "B"], served_at=1_796_000_000.25)
    assert record == {
        "record_type": "impression",
        "recommendation_id": "r1",
        "user_id": "u1",
        "surface": "home",
        "experiment": "exp",
        "variant": "holdout",
        "model_version": "m-1",
        "timestamp": "2026-11-30T00:53:20.250Z",
        "items": [
            {"item_id": "a", "position": 0, "source": "popularity"},
            {"item_id": "b", "position": 1, "source": "new arrival"},
        ],
        "interleaving": ["A", "B"],
    }
    assert "interleaving" not in impression_record(PAGE, None, served_at=0.0)


def test_queued_records_are_put_in_batches_keyed_by_shopper() -> None:
    kinesis = FakeKinesis()
    log = ImpressionLog(kinesis, "events", capacity=1000, sleep=lambda _: None)
    for n in range(3):
        assert log.put(page(n))
    assert log.wait(5.0) and log.sent == 3 and log.take_dropped() == 0
    assert sum(len(call) for call in kinesis.calls) == 3
    assert {record["PartitionKey"] for call in kinesis.calls for record in call} == {"u1"}


def test_a_full_buffer_drops_and_counts_instead_of_waiting() -> None:
    # Given a stream that does not answer yet, and a buffer of two records
    kinesis = FakeKinesis()
    kinesis.hold.clear()
    log = ImpressionLog(kinesis, "events", capacity=2, sleep=lambda _: None)
    accepted = [log.put(impression_record(PAGE, None, 0.0)) for _ in range(5)]
    # Then put never blocked: what did not fit was dropped and counted
    assert accepted.count(False) >= 2 and log.take_dropped() == accepted.count(False)
    assert log.wait(0.0) is False  # and a bounded wait gives up
    kinesis.hold.set()
    assert log.wait(5.0) and log.sent == accepted.count(True)


def test_refused_records_are_tried_once_more_then_counted() -> None:
    # Given Kinesis refusing r1 once and r2 twice
    kinesis = FakeKinesis(refusals={"r1": 1, "r2": 2})
    log = ImpressionLog(kinesis, "events", sleep=lambda _: None)
    for n in range(3):
        log.put(page(n))
    assert log.wait(5.0)
    # Then r1 made it on its second try, r2 never did and is counted, nothing else was sent twice
    assert log.sent == 2 and log.take_dropped() == 1
    sent = [json.loads(record["Data"])["recommendation_id"] for call in kinesis.calls for record in call]
    assert sorted(sent) == ["r0", "r1", "r1", "r2", "r2"]


def test_a_failing_stream_is_counted_and_the_log_keeps_working() -> None:
    kinesis = FakeKinesis(error=RuntimeError("stream gone"))
    log = ImpressionLog(kinesis, "events", sleep=lambda _: None)
    log.put(impression_record(PAGE, None, 0.0))
    assert log.wait(5.0) and log.take_dropped() == 1 and log.sent == 0
    kinesis.error = None
    log.put(impression_record(PAGE, None, 0.0))
    assert log.wait(5.0) and log.sent == 1
