"""The load test's event balance: the processor's outcomes counted over the stream's distinct records,
whatever the event source mapping delivers again after a retry."""

from __future__ import annotations

from datetime import UTC, datetime

from local_twin.load_twin import EventTotals
from merchandiser.schemas import Event
from merchandiser.stream import BatchOutcome, InvalidEventError, Parsed, StreamRecord

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def event(number: str) -> Parsed:
    record = StreamRecord(number, "u1", b"{}")
    return Parsed(
        record,
        event=Event(event_id=f"e{number}", user_id="u1", item_id="i1", event_type="view", timestamp=NOW),
    )


def garbage(number: str) -> Parsed:
    return Parsed(
        StreamRecord(number, "bad", b"{not json"), rejection=InvalidEventError("MALFORMED_JSON", "x")
    )


def impression(number: str) -> Parsed:
    return Parsed(StreamRecord(number, "u1", b"{}"), impression=True)


def test_records_delivered_again_after_a_retry_are_counted_once() -> None:
    # Given a batch of three events, a bad record and an impression, where the second event's write failed
    totals = EventTotals()
    first = [event("1"), event("2"), event("3"), garbage("4"), impression("5")]
    totals.add(
        first, BatchOutcome(5, processed=2, dead_lettered=1, impressions=1, failed_sequence_numbers=["2"])
    )
    # When the mapping retries from the failed record: the third event is a duplicate by now and the bad
    # record is dead-lettered again
    again = first[1:]
    totals.add(again, BatchOutcome(4, processed=1, duplicates=1, dead_lettered=1, impressions=1))
    # Then each distinct record is counted once: 3 events processed, 1 dead-lettered, 1 impression,
    # and the three records delivered again are counted apart
    assert totals.as_dict() == {
        "processed": 3,
        "duplicates": 0,
        "dead_lettered": 1,
        "impressions": 1,
        "failed_deliveries": 1,
        "redelivered": 3,
        "batches": 2,
    }


def test_an_event_sent_twice_by_a_client_is_a_duplicate() -> None:
    # Given the same event id on two records (a client sent it again)
    totals = EventTotals()
    repeat = Parsed(StreamRecord("2", "u1", b"{}"), event=event("1").event)
    # When both are applied in one batch
    totals.add([event("1"), repeat], BatchOutcome(2, processed=1, duplicates=1))
    # Then one is processed and one is a duplicate, and nothing was delivered again
    assert (totals.processed, totals.duplicates, totals.redelivered) == (1, 1, 0)
