"""Putting events on the stream: records Kinesis refuses one by one are retried, and only those."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from merchandiser.schemas import Event
from merchandiser.stream import StreamUnavailableError, put_events
from merchandiser.stream.producer import ATTEMPTS

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def events(n: int) -> list[Event]:
    return [
        Event(event_id=f"e{i}", user_id=f"u{i}", item_id="i1", event_type="view", timestamp=NOW)
        for i in range(n)
    ]


class RefusingKinesis:
    """Refuses the records whose data holds ``refused`` for the first ``refusals`` attempts."""

    def __init__(self, refused: str, refusals: int):
        self.refused, self.refusals = refused, refusals
        self.calls: list[list[bytes]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([record["Data"] for record in Records])
        refuse = len(self.calls) <= self.refusals
        results = [
            {"ErrorCode": "ProvisionedThroughputExceededException"}
            if refuse and self.refused.encode() in record["Data"]
            else {"SequenceNumber": str(n)}
            for n, record in enumerate(Records)
        ]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def test_a_record_refused_on_every_attempt_but_the_last_is_put_alone_each_time() -> None:
    # Given a stream that refuses one record of three on all attempts but the last
    kinesis = RefusingKinesis('"e1"', refusals=ATTEMPTS - 1)
    backoffs: list[int] = []
    # When the three events are put
    put = put_events(kinesis, "events", events(3), backoff=backoffs.append)
    # Then all three are put: the first call carries all, each retry only the refused one
    assert put == 3
    assert [len(call) for call in kinesis.calls] == [3] + [1] * (ATTEMPTS - 1)
    assert backoffs == list(range(ATTEMPTS - 1))


def test_a_record_refused_on_every_attempt_makes_the_stream_unavailable() -> None:
    # Given a stream that refuses one record every time
    kinesis = RefusingKinesis('"e0"', refusals=ATTEMPTS)
    # When the events are put, Then the caller is told how many were refused, after every attempt
    with pytest.raises(StreamUnavailableError, match="1 events were refused"):
        put_events(kinesis, "events", events(2))
    assert len(kinesis.calls) == ATTEMPTS
