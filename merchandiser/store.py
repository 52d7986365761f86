"""Data access: the user, session, item and trending-counter records in DynamoDB, behind one small class.

Item shapes
- users:    {user_id, history: {item_id: weight}, purchased: [item_id], attributes: {..}, model_version}
            written by the publish step from the training job's ``user_features.jsonl.gz``.
- sessions: {user_id, events: [{event_id, item_id, event_type, weight, ts}] (the last
            ``SESSION_EVENTS_KEPT`` by time, oldest first), seen: [event_id] (the last
            ``SEEN_EVENT_IDS_KEPT`` processed ids, for idempotency across batches), purchased: {item_id},
            version (optimistic lock), expires_at (TTL, epoch s), updated_at}, written by the event processor.
- trending counters, in the sessions table under ``#trending#YYYYMMDDHH`` keys (see ``trending``):
            {user_id: key, "c#<item_id>": weighted count, expires_at}; they hold no shopper id.
- items:    {item_id, title, category, brand, price, in_stock, created_at, updated_at}: catalogue
            upserts that arrive between trainings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from merchandiser import trending

SESSION_EVENTS_READ = 50
SESSION_EVENTS_KEPT = 50
# Kinesis redelivers within minutes (retries end at the mapping's record age); 200 ids cover far more
# events than one shopper makes in that time, in about 8 KB.
SEEN_EVENT_IDS_KEPT = 200
BATCH_GET_LIMIT = 100
LEGACY_VERSION = -1
# UpdateExpression is limited to 4 KB; one counter update stays well below it. 100 ADDs per call also
# covers a full batch of 100 events and stays within what moto's expression parser can recurse through.
MAX_EXPRESSION_CHARS = 3500
MAX_ADDS_PER_UPDATE = 100


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


@dataclass(frozen=True)
class ShopperRecord:
    """Everything serving knows about one shopper, read in one round trip."""

    user_id: str
    history: dict[str, float] = field(default_factory=dict)
    purchased: frozenset[str] = frozenset()
    attributes: dict[str, str] = field(default_factory=dict)
    session: tuple[SessionEvent, ...] = ()  # most recent first
    recent: tuple[str, ...] = ()  # the profile's latest items at training time, most recent first
    category_seen: dict[str, float] = field(default_factory=dict)  # category -> last touch, epoch s

    @property
    def known(self) -> bool:
        return bool(self.history or self.session)


def to_dynamo(value: Any) -> Any:
    """Floats become Decimals (boto3's resource layer refuses floats)."""
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    if isinstance(value, Mapping):
        return {key: to_dynamo(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(item) for item in value]
    return value


def _session_events(raw_events: Iterable[Mapping[str, Any]]) -> list[SessionEvent]:
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
    events = _session_events(item.get("events", []))
    events.sort(key=lambda event: event.ts)
    return SessionState(
        user_id=user_id,
        events=tuple(events),
        seen=tuple(str(event_id) for event_id in item.get("seen", [])),
        purchased=frozenset(str(i) for i in item.get("purchased", set())),
        # A session written before sessions had versions: LEGACY_VERSION makes the next write claim it.
        version=int(item["version"]) if "version" in item else LEGACY_VERSION,
    )


class FeatureStore:
    """Reads and writes the three tables. ``dynamodb`` is a boto3 DynamoDB service resource."""

    def __init__(self, dynamodb: Any, users_table: str, sessions_table: str, items_table: str | None = None):
        self._dynamodb = dynamodb
        self.users_table = users_table
        self.sessions_table = sessions_table
        self.items_table = items_table

    # -- serving -------------------------------------------------------------------------------
    def shopper(self, user_id: str) -> ShopperRecord:
        """One BatchGetItem for the profile and the session."""
        response = self._dynamodb.batch_get_item(
            RequestItems={
                self.users_table: {"Keys": [{"user_id": user_id}]},
                self.sessions_table: {"Keys": [{"user_id": user_id}]},
            }
        )
        found = response.get("Responses", {})
        profile: dict[str, Any] = next(iter(found.get(self.users_table, [])), {})
        session: dict[str, Any] = next(iter(found.get(self.sessions_table, [])), {})
        events = _session_events(session.get("events", []))
        events.sort(key=lambda event: event.ts, reverse=True)
        purchased = set(profile.get("purchased", [])) | set(session.get("purchased", []))
        return ShopperRecord(
            user_id=user_id,
            history={item: float(weight) for item, weight in profile.get("history", {}).items()},
            purchased=frozenset(str(item) for item in purchased),
            attributes={key: str(value) for key, value in profile.get("attributes", {}).items()},
            session=tuple(events[:SESSION_EVENTS_READ]),
            recent=tuple(str(item) for item in profile.get("recent", [])),
            category_seen={key: float(value) for key, value in profile.get("category_seen", {}).items()},
        )

    def trending(
        self, now: datetime, window_hours: int, half_life_hours: float | None = None
    ) -> dict[str, float]:
        """Weighted event counts per item over the last ``window_hours`` hourly buckets (one BatchGetItem
        per 100 hours); rank them with ``trending.rank_trending``."""
        keys = trending.bucket_keys(now, window_hours)
        found = self._batch_get(self.sessions_table, keys, consistent=False)
        prefix = trending.COUNT_ATTRIBUTE_PREFIX
        buckets = [
            {
                name[len(prefix) :]: float(value)
                for name, value in found.get(key, {}).items()
                if name.startswith(prefix)
            }
            for key in keys
        ]
        return trending.decayed_sum(buckets, half_life_hours)

    # -- event processor -------------------------------------------------------------------------
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

    def add_trending(self, key: str, counts: Mapping[str, float], expires_at: int) -> int:
        """Atomic ADDs of weighted counts to one hourly counter; returns the number of UpdateItem calls
        (one, unless a batch names so many items that the expression must be split)."""
        table = self._dynamodb.Table(self.sessions_table)
        calls = 0
        names: dict[str, str] = {}
        values: dict[str, Any] = {":ttl": expires_at}
        clauses: list[str] = []

        def flush() -> None:
            nonlocal calls
            table.update_item(
                Key={"user_id": key},
                UpdateExpression="SET expires_at = :ttl ADD " + ", ".join(clauses),
                ExpressionAttributeNames=dict(names),
                ExpressionAttributeValues=dict(values),
            )
            calls += 1

        for number, (item_id, count) in enumerate(sorted(counts.items())):
            clause = f"#c{number} :c{number}"
            too_long = sum(len(c) + 2 for c in clauses) + len(clause) > MAX_EXPRESSION_CHARS
            if clauses and (too_long or len(clauses) == MAX_ADDS_PER_UPDATE):
                flush()
                clauses.clear()
                names.clear()
                values = {":ttl": expires_at}
            clauses.append(clause)
            names[f"#c{number}"] = trending.COUNT_ATTRIBUTE_PREFIX + item_id
            values[f":c{number}"] = to_dynamo(float(count))
        if clauses:
            flush()
        return calls

    # -- publishing, catalogue, erasure ----------------------------------------------------------
    def put_profiles(self, profiles: Iterable[Mapping[str, Any]], model_version: str) -> int:
        """Loads the training job's user features; batch_writer groups them 25 at a time."""
        count = 0
        with self._dynamodb.Table(self.users_table).batch_writer() as batch:
            for profile in profiles:
                batch.put_item(Item=to_dynamo({**profile, "model_version": model_version}))
                count += 1
        return count

    def table(self, name: str) -> Any:
        return self._dynamodb.Table(name)

    def put_item(self, item: Mapping[str, Any]) -> None:
        if self.items_table is None:
            raise ValueError("this store was built without an items table")
        self._dynamodb.Table(self.items_table).put_item(Item=to_dynamo(dict(item)))

    def erase_user(self, user_id: str) -> None:
        """Deletes the profile and the session (events, seen ids, purchases). The trending counters hold
        only per-item sums, no shopper id, so there is nothing personal in them to erase."""
        self._dynamodb.Table(self.users_table).delete_item(Key={"user_id": user_id})
        self._dynamodb.Table(self.sessions_table).delete_item(Key={"user_id": user_id})

    # -- internals -------------------------------------------------------------------------------
    def _batch_get(self, table: str, keys: list[str], consistent: bool) -> dict[str, dict[str, Any]]:
        """Items by key, following UnprocessedKeys until DynamoDB has answered for every key."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                table: {"Keys": [{"user_id": key} for key in keys[start : start + BATCH_GET_LIMIT]],
                        "ConsistentRead": consistent}
            }  # fmt: skip
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(table, []):
                    found[str(item["user_id"])] = item
                request = response.get("UnprocessedKeys") or {}
        return found
