"""Session records (sessions table), written by the event processor, read by serving.

{user_id, events: [{event_id, item_id, event_type, weight, ts}] (the last ``SESSION_EVENTS_KEPT`` by time,
oldest first), seen: [event_id] (the last ``SEEN_EVENT_IDS_KEPT`` processed ids, for idempotency across
batches), purchased: {item_id}, version (optimistic lock), expires_at (TTL, epoch s), updated_at}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.store.dynamo import Tables, to_dynamo

SESSION_EVENTS_READ = 50
SESSION_EVENTS_KEPT = 50
# Kinesis redelivers within minutes (retries end at the mapping's record age); 200 ids cover far more
# events than one shopper makes in that time, in about 8 KB.
SEEN_EVENT_IDS_KEPT = 200
LEGACY_VERSION = -1


class SessionConflictError(RuntimeError):
    """The session changed (another writer, or an erasure) between our read and our write."""


@dataclass(frozen=True)
class SessionEvent:
    event_id: str
    item_id: str
    event_type: str
    weight: float
    ts: float


@dataclass(frozen=True)
class SessionState:
    """A shopper's session as the event processor reads and rewrites it; version None = no item yet."""

    user_id: str
    events: tuple[SessionEvent, ...] = ()  # oldest first
    seen: tuple[str, ...] = ()  # processed event ids, oldest first
    purchased: frozenset[str] = frozenset()
    version: int | None = None


def session_events(raw_events: Iterable[Mapping[str, Any]]) -> list[SessionEvent]:
    return [
        SessionEvent(
            event_id=str(raw.get("event_id", "")),
            item_id=str(raw["item_id"]),
            event_type=str(raw["event_type"]),
            weight=float(raw["weight"]),
            ts=float(raw["ts"]),
        )
        for raw in raw_events
    ]


def _session_state(user_id: str, item: Mapping[str, Any] | None) -> SessionState:
    if not item:
        return SessionState(user_id)
    events = session_events(item.get("events", []))
    events.sort(key=lambda event: event.ts)
    return SessionState(
        user_id=user_id,
        events=tuple(events),
        seen=tuple(str(event_id) for event_id in item.get("seen", [])),
        purchased=frozenset(str(i) for i in item.get("purchased", set())),
        # A session written before sessions had versions: LEGACY_VERSION makes the next write claim it.
        version=int(item["version"]) if "version" in item else LEGACY_VERSION,
    )


class Sessions(Tables):
    def read_sessions(self, user_ids: Iterable[str]) -> dict[str, SessionState]:
        """The sessions of a batch's shoppers: one strongly consistent BatchGetItem per 100 shoppers."""
        wanted = sorted(set(user_ids))
        found = self._batch_get(self.sessions_table, wanted, consistent=True)
        return {user_id: _session_state(user_id, found.get(user_id)) for user_id in wanted}

    def read_session(self, user_id: str) -> SessionState:
        item = (
            self._dynamodb.Table(self.sessions_table)
            .get_item(Key={"user_id": user_id}, ConsistentRead=True)
            .get("Item")
        )
        return _session_state(user_id, item)

    def write_session(self, state: SessionState, expected_version: int | None, expires_at: int) -> None:
        """One conditional PutItem: succeeds only if the session is still the one that was read."""
        item: dict[str, Any] = {
            "user_id": state.user_id,
            "events": to_dynamo([event.__dict__ for event in state.events]),
            "seen": list(state.seen),
            "version": 0 if expected_version in (None, LEGACY_VERSION) else expected_version + 1,
            "expires_at": expires_at,
            "updated_at": to_dynamo(max((event.ts for event in state.events), default=0.0)),
        }
        if state.purchased:  # DynamoDB refuses empty sets
            item["purchased"] = set(state.purchased)
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(user_id)"}
        elif expected_version == LEGACY_VERSION:
            condition = {"ConditionExpression": "attribute_exists(user_id) AND attribute_not_exists(version)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": expected_version},
            }
        try:
            self._dynamodb.Table(self.sessions_table).put_item(Item=item, **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise SessionConflictError(f"session of {state.user_id} changed since it was read") from exc
            raise

    def append_session(
        self, user_id: str, events: list[SessionEvent], purchased: Iterable[str], expires_at: int
    ) -> None:
        """Adds events to a session outside the processor (fixtures, tools): read, merge, write."""
        state = self.read_session(user_id)
        merged = sorted([*state.events, *events], key=lambda event: event.ts)[-SESSION_EVENTS_KEPT:]
        seen = [*state.seen, *(event.event_id for event in events)][-SEEN_EVENT_IDS_KEPT:]
        updated = SessionState(user_id, tuple(merged), tuple(seen), state.purchased | set(purchased))
        self.write_session(updated, state.version, expires_at)
