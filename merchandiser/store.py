"""Data access: the user, session and item records in DynamoDB, behind one small class.

Item shapes
- users:    {user_id, history: {item_id: weight}, purchased: [item_id], attributes: {..}, model_version}
            written by the publish step from the training job's ``user_features.jsonl.gz``.
- sessions: {user_id, events: [{event_id, item_id, event_type, weight, ts}], purchased: {item_id},
            expires_at (TTL, epoch s), updated_at} written by the event processor.
- items:    {item_id, title, category, brand, price, in_stock, created_at, updated_at}: catalogue
            upserts that arrive between trainings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SESSION_EVENTS_READ = 50


@dataclass(frozen=True)
class SessionEvent:
    event_id: str
    item_id: str
    event_type: str
    weight: float
    ts: float


@dataclass(frozen=True)
class ShopperRecord:
    """Everything serving knows about one shopper, read in one round trip."""

    user_id: str
    history: dict[str, float] = field(default_factory=dict)
    purchased: frozenset[str] = frozenset()
    attributes: dict[str, str] = field(default_factory=dict)
    session: tuple[SessionEvent, ...] = ()  # most recent first

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


class FeatureStore:
    """Reads and writes the three tables. ``dynamodb`` is a boto3 DynamoDB service resource."""

    def __init__(self, dynamodb: Any, users_table: str, sessions_table: str, items_table: str | None = None):
        self._dynamodb = dynamodb
        self.users_table = users_table
        self.sessions_table = sessions_table
        self.items_table = items_table

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
        events = [
            SessionEvent(
                event_id=str(raw.get("event_id", "")),
                item_id=str(raw["item_id"]),
                event_type=str(raw["event_type"]),
                weight=float(raw["weight"]),
                ts=float(raw["ts"]),
            )
            for raw in session.get("events", [])
        ]
        events.sort(key=lambda event: event.ts, reverse=True)
        purchased = set(profile.get("purchased", [])) | set(session.get("purchased", []))
        return ShopperRecord(
            user_id=user_id,
            history={item: float(weight) for item, weight in profile.get("history", {}).items()},
            purchased=frozenset(str(item) for item in purchased),
            attributes={key: str(value) for key, value in profile.get("attributes", {}).items()},
            session=tuple(events[:SESSION_EVENTS_READ]),
        )

    def append_session(
        self, user_id: str, events: list[SessionEvent], purchased: Iterable[str], expires_at: int
    ) -> None:
        """One UpdateItem per shopper per batch: append the events, add purchases, push the TTL out."""
        bought = sorted(set(purchased))
        expression = (
            "SET events = list_append(if_not_exists(events, :empty), :events),"
            " expires_at = :ttl, updated_at = :now"
        )
        values: dict[str, Any] = {
            ":empty": [],
            ":events": to_dynamo([event.__dict__ for event in events]),
            ":ttl": expires_at,
            ":now": to_dynamo(max(event.ts for event in events)),
        }
        if bought:
            expression += " ADD purchased :bought"
            values[":bought"] = set(bought)
        self._dynamodb.Table(self.sessions_table).update_item(
            Key={"user_id": user_id}, UpdateExpression=expression, ExpressionAttributeValues=values
        )

    def put_profiles(self, profiles: Iterable[Mapping[str, Any]], model_version: str) -> int:
        """Loads the training job's user features; batch_writer groups them 25 at a time."""
        count = 0
        with self._dynamodb.Table(self.users_table).batch_writer() as batch:
            for profile in profiles:
                batch.put_item(Item=to_dynamo({**profile, "model_version": model_version}))
                count += 1
        return count

    def put_item(self, item: Mapping[str, Any]) -> None:
        if self.items_table is None:
            raise ValueError("this store was built without an items table")
        self._dynamodb.Table(self.items_table).put_item(Item=to_dynamo(dict(item)))

    def erase_user(self, user_id: str) -> None:
        self._dynamodb.Table(self.users_table).delete_item(Key={"user_id": user_id})
        self._dynamodb.Table(self.sessions_table).delete_item(Key={"user_id": user_id})
