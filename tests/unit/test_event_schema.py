"""The event contract (schema version 1): what parses, what is refused and with which reason code,
and how new events merge into a bounded, time-ordered session."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from merchandiser.schemas import MAX_EVENT_BYTES, Event
from merchandiser.store import SEEN_EVENT_IDS_KEPT, SESSION_EVENTS_KEPT, SessionEvent, SessionState
from merchandiser.stream import InvalidEventError, merge_session, parse_event

FULL = {
    "event_id": "e-1",
    "user_id": "u1",
    "item_id": "i1",
    "event_type": "purchase",
    "timestamp": "2026-11-22T10:00:00+01:00",
    "session_id": "s1",
    "recommendation_id": "r1",
    "position": 3,
    "quantity": 2,
    "price": 9.5,
    "context": {"surface": "home"},
}


def test_a_full_event_parses_with_its_optional_fields_and_a_utc_timestamp():
    event = parse_event(json.dumps(FULL).encode())
    assert event.schema_version == 1
    assert event.timestamp == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert (event.position, event.quantity, event.price, event.context) == (3, 2, 9.5, {"surface": "home"})
    assert event.weight == 8.0


def test_a_naive_timestamp_means_utc_and_a_rating_weighs_by_its_value():
    event = Event.model_validate(
        FULL | {"timestamp": "2026-11-22T10:00:00", "event_type": "rating", "value": 2.5}
    )
    assert event.timestamp.tzinfo == UTC and event.weight == 2.0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe", "MALFORMED_JSON"),
        (b"[]", "NOT_AN_OBJECT"),
        (json.dumps(FULL | {"event_type": "wishlist"}).encode(), "UNKNOWN_EVENT_TYPE"),
        (json.dumps({k: v for k, v in FULL.items() if k != "timestamp"}).encode(), "MISSING_FIELD"),
        (json.dumps(FULL | {"user_id": "../etc"}).encode(), "INVALID_FIELD"),
        (json.dumps(FULL | {"schema_version": 2}).encode(), "INVALID_FIELD"),
        (json.dumps(FULL | {"extra": 1}).encode(), "UNKNOWN_FIELD"),
        (b" " * (MAX_EVENT_BYTES + 1), "OVERSIZED"),
    ],
)
def test_each_refusal_names_its_reason(raw, code):
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw)
    assert caught.value.code == code and str(caught.value).startswith(code)


def _event(event_id: str, minute: int, event_type: str = "view") -> Event:
    return Event.model_validate(
        {"event_id": event_id, "user_id": "u1", "item_id": f"i{minute}", "event_type": event_type,
         "timestamp": f"2026-11-22T10:{minute:02d}:00Z"}
    )  # fmt: skip


def test_merge_orders_by_event_time_adds_purchases_and_keeps_the_version():
    state = SessionState("u1", (SessionEvent("a", "i5", "view", 1.0, _event("a", 5).timestamp.timestamp()),),
                         ("a",), frozenset({"old"}), version=4)  # fmt: skip
    merged = merge_session(state, [_event("c", 9, "purchase"), _event("b", 1)])
    assert [e.event_id for e in merged.events] == ["b", "a", "c"]
    assert merged.seen == ("a", "c", "b") and merged.purchased == {"old", "i9"} and merged.version == 4


def test_merge_keeps_only_the_most_recent_events_and_ids():
    many = [_event(f"e{n}", n % 60) for n in range(SEEN_EVENT_IDS_KEPT + 10)]
    merged = merge_session(SessionState("u1"), many)
    assert len(merged.events) == SESSION_EVENTS_KEPT
    assert merged.events[-1].ts == max(e.timestamp.timestamp() for e in many)
    assert merged.seen == tuple(e.event_id for e in many[-SEEN_EVENT_IDS_KEPT:])


EVENTS = Path(__file__).resolve().parent.parent / "events"


def test_the_documented_sample_event_is_valid():
    event = parse_event((EVENTS / "event_v1.json").read_bytes())
    assert event.event_type == "add_to_cart" and event.context == {"surface": "home", "device": "mobile"}
