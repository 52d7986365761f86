"""Shopper profiles (users table) and the one read serving makes per page: profile and session together.

{user_id, history: {item_id: weight}, history_at: epoch s, half_life_days, purchased: [item_id],
attributes: {..}, recent: [item_id], category_seen: {category: epoch s}, model_version, digest}, and
raw_history: {item_id: weight} when the model serves a personal anchor (the same items' summed event weights
at the stream's weights, undecayed: the cells the anchor was fitted on); written by the publish step from
the training job's ``user_features.jsonl.gz``.

``history`` is decayed to ``history_at``, the shopper's latest event, not to the training's end: decay is
one factor for all of a shopper's events, so the stored weights (and the digest) change only when the
shopper's events do, and serving scales them to the model's ``histories_at`` (``history_at_model``). A
profile without ``history_at`` (written by a model before it) holds weights at its model's end: used as is.

``model_version`` (the model whose publish last wrote the item) and ``digest`` (``profile_digest`` of what
was written) are stamps: serving reads neither (``Shoppers.shopper`` picks the profile's fields by name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from merchandiser.catalog.popularity import SECONDS_PER_DAY
from merchandiser.store.dynamo import to_dynamo
from merchandiser.store.sessions import SESSION_EVENTS_READ, SessionEvent, Sessions, session_events

MODEL_VERSION = "model_version"
DIGEST = "digest"
DIGEST_BYTES = 16
STAMPS = (MODEL_VERSION, DIGEST)
HISTORY_AT = "history_at"  # epoch s the profile's history is decayed to
HALF_LIFE_DAYS = "half_life_days"  # the half-life it was decayed with
HISTORIES_AT = "histories_at"  # the manifest's: epoch s its training decayed every history to


def decay_factor(later: float, earlier: float, half_life_days: float) -> float:
    """What a weight at ``earlier`` is worth at ``later`` (epoch s): halves every half-life; 1 when
    ``later`` is not after ``earlier`` (as ``recency_decay`` counts events after its ``now``)."""
    return float(0.5 ** (max(later - earlier, 0.0) / SECONDS_PER_DAY / half_life_days))


def history_at_model(
    history: Mapping[str, float],
    history_at: float | None,
    half_life_days: float | None,
    histories_at: float | None,
) -> dict[str, float]:
    """A profile's history as its model's training decayed it (to the manifest's ``histories_at``): the
    stored weights times ``decay_factor(histories_at, history_at, half_life_days)``. Stored as they are
    when the profile or the model predates ``history_at`` (no factor to apply)."""
    if history_at is None or not half_life_days or histories_at is None:
        return dict(history)
    factor = decay_factor(histories_at, history_at, half_life_days)
    return {item: weight * factor for item, weight in history.items()}


def profile_digest(profile: Mapping[str, Any]) -> str:
    """The first 16 bytes (hex) of the sha256 of the profile's canonical JSON (keys sorted, no spaces), its
    stamps left out: equal for equal content whichever model wrote it. ``user_id`` is part of the content,
    so a digest names one shopper's profile. Values JSON cannot hold are digested as ``str`` (a set's order
    may then differ between processes: at worst an unchanged profile is written again)."""
    content = {key: value for key, value in profile.items() if key not in STAMPS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).digest()[:DIGEST_BYTES].hex()


class ProfileWrites(NamedTuple):
    written: int
    unchanged: int  # their digest was already stored: not written, their stamps stay as they were


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
    # ``history`` is decayed to ``history_at`` (epoch s) with ``half_life_days``; None: to its model's end
    history_at: float | None = None
    half_life_days: float | None = None

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
            history_at=_number(profile.get(HISTORY_AT)),
            half_life_days=_number(profile.get(HALF_LIFE_DAYS)),
        )

    def put_profiles(
        self,
        profiles: Iterable[Mapping[str, Any]],
        model_version: str,
        stored: Container[bytes] = frozenset(),
    ) -> ProfileWrites:
        """Loads the training job's user features, each stamped with ``model_version`` and its digest,
        except those whose digest is in ``stored`` (``profile_digests``: the table holds them as they are);
        batch_writer groups the writes 25 at a time."""
        written = unchanged = 0
        with self._dynamodb.Table(self.users_table).batch_writer() as batch:
            for profile in profiles:
                digest = profile_digest(profile)
                if bytes.fromhex(digest) in stored:
                    unchanged += 1
                    continue
                batch.put_item(Item=to_dynamo({**profile, MODEL_VERSION: model_version, DIGEST: digest}))
                written += 1
        return ProfileWrites(written, unchanged)

    def profile_digests(self, page_limit: int | None = None) -> set[bytes]:
        """The digest of every stored profile (an item without one, written before digests were, has
        none): a Scan projecting the digest, followed page by page (1 MB of items each, at most
        ``page_limit`` items when set). A Scan is billed by the size of the items it reads, not of what it
        projects: 0.5 read unit per 4 KB, eventually consistent. The set holds 16 bytes per shopper, about
        83 bytes each in CPython with the set's slot (measured with tracemalloc): ~83 MB a million shoppers,
        which the publish function's memory bounds (local_twin/cost_bill.py notes the load it fails at)."""
        request: dict[str, Any] = {"ProjectionExpression": "#d", "ExpressionAttributeNames": {"#d": DIGEST}}
        if page_limit is not None:
            request["Limit"] = page_limit
        table = self._dynamodb.Table(self.users_table)
        digests: set[bytes] = set()
        while True:
            page = table.scan(**request)
            digests.update(
                bytes.fromhex(str(item[DIGEST])) for item in page.get("Items", []) if DIGEST in item
            )
            if "LastEvaluatedKey" not in page:
                return digests
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def erase_user(self, user_id: str, erased_at: float) -> None:
        """Deletes the profile and the session (events, seen ids, purchases), leaving an erasure marker
        that keeps the shopper's events still on the stream out of a new session (``sessions``). The
        trending counters hold only per-item sums, no shopper id, so there is nothing personal in them."""
        self._dynamodb.Table(self.users_table).delete_item(Key={"user_id": user_id})
        self.mark_erased(user_id, erased_at)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
