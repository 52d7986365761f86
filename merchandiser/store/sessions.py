"""Session records (sessions table), written by the event processor, read by serving.

{user_id, events: [{event_id, item_id, event_type, weight, ts}] (the last ``SESSION_EVENTS_KEPT`` by time,
oldest first), seen: [event_id] (the last ``SEEN_EVENT_IDS_KEPT`` processed ids, for idempotency across
batches), purchased: {item_id}, version (optimistic lock), expires_at (TTL, epoch s), updated_at}

Erasure markers: {user_id: "#erased#<sha256 of the id>", erased_at (epoch s), expires_at}, written when a
shopper is erased and read with their session, so that their events still on the stream (written before
the erasure, delivered after it) never make a new session; it lives as long as the stream keeps records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.store.archive import user_hash
from merchandiser.store.dynamo import Tables, to_dynamo

SESSION_EVENTS_READ = 50
SESSION_EVENTS_KEPT = 50
# Kinesis redelivers within minutes (retries end at the mapping's record age); 200 ids cover far more
# events than one shopper makes in that time, in about 8 KB.
SEEN_EVENT_IDS_KEPT = 200
LEGACY_VERSION = -1
ERASED_KEY_PREFIX = "#erased#"  # no shopper id can take it: ids start with a letter or digit
ERASURE_MARKER_SECONDS = 25 * 3600  # the stream keeps a record 24 hours


def erased_key(user_id: str) -> str:
    return ERASED_KEY_PREFIX + user_hash(user_id)


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
    erased_at: float | None = None  # epoch s: the shopper was erased then; earlier events are dropped


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
        """The sessions of a batch's shoppers and their erasure markers: one strongly consistent
        BatchGetItem per 50 shoppers."""
        wanted = sorted(set(user_ids))
        keys = [*wanted, *(erased_key(user_id) for user_id in wanted)]
        found = self._batch_get(self.sessions_table, keys, consistent=True)
        states = {}
        for user_id in wanted:
            state = _session_state(user_id, found.get(user_id))
            marker = found.get(erased_key(user_id))
            states[user_id] = (
                state if marker is None else replace(state, erased_at=float(marker["erased_at"]))
            )
        return states

    def read_session(self, user_id: str) -> SessionState:
        return self.read_sessions([user_id])[user_id]

    def mark_erased(self, user_id: str, erased_at: float) -> None:
        """Deletes the session and leaves the erasure marker in its place."""
        table = self._dynamodb.Table(self.sessions_table)
        table.put_item(
            Item={
                "user_id": erased_key(user_id),
                "erased_at": to_dynamo(float(erased_at)),
                "expires_at": int(erased_at) + ERASURE_MARKER_SECONDS,
            }
        )
        table.delete_item(Key={"user_id": user_id})

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
