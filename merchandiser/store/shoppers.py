"""Shopper profiles (users table) and the one read serving makes per page: profile and session together.

{user_id, history: {item_id: weight}, purchased: [item_id], attributes: {..}, recent: [item_id],
category_seen: {category: epoch s}, model_version}, and raw_history: {item_id: weight} when the model serves
a personal anchor (the same items' summed event weights at the stream's weights, undecayed: the cells the
anchor was fitted on); written by the publish step from the training job's ``user_features.jsonl.gz``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from merchandiser.store.dynamo import to_dynamo
from merchandiser.store.sessions import SESSION_EVENTS_READ, SessionEvent, Sessions, session_events


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
    raw_history: dict[str, float] = field(default_factory=dict)  # a served personal anchor's cells

    @property
    def known(self) -> bool:
        return bool(self.history or self.session)


class Shoppers(Sessions):
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
        events = session_events(session.get("events", []))
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
            raw_history={item: float(weight) for item, weight in profile.get("raw_history", {}).items()},
        )

    def put_profiles(self, profiles: Iterable[Mapping[str, Any]], model_version: str) -> int:
        """Loads the training job's user features; batch_writer groups them 25 at a time."""
        count = 0
        with self._dynamodb.Table(self.users_table).batch_writer() as batch:
            for profile in profiles:
                batch.put_item(Item=to_dynamo({**profile, "model_version": model_version}))
                count += 1
        return count

    def erase_user(self, user_id: str, erased_at: float) -> None:
        """Deletes the profile and the session (events, seen ids, purchases), leaving an erasure marker
        that keeps the shopper's events still on the stream out of a new session (``sessions``). The
        trending counters hold only per-item sums, no shopper id, so there is nothing personal in them."""
        self._dynamodb.Table(self.users_table).delete_item(Key={"user_id": user_id})
        self.mark_erased(user_id, erased_at)
