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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from merchandiser.store.dynamo import to_dynamo
from merchandiser.store.sessions import SESSION_EVENTS_READ, SessionEvent, Sessions, session_events

SECONDS_PER_DAY = 86_400.0  # as merchandiser.catalog's: the store ranks below the catalogue, never imports it
MODEL_VERSION = "model_version"
DIGEST = "digest"
DIGEST_BYTES = 16
STAMPS = (MODEL_VERSION, DIGEST)
DIGEST_DTYPE = f"S{DIGEST_BYTES}"
# segments of the publish step's Scan of the stored digests, one thread each: a 1 MB page takes ~100 ms
# to come back and be parsed (local_twin/cost_model.py's assumption), so 8 read ~8 pages at a time; the
# parallel Scan bills the same read units as a sequential one
DIGEST_SCAN_SEGMENTS = 8
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


class StoredDigests:
    """The stored profiles' digests as one sorted array of 16-byte strings (``np.searchsorted`` to look one
    up): 16 bytes a shopper where a Python set of ``bytes`` takes ~83. Every digest is 16 bytes, so numpy's
    dropping of trailing NUL bytes when it compares two of them cannot make two digests equal."""

    def __init__(self, digests: np.ndarray) -> None:
        self.digests = digests  # sorted, DIGEST_DTYPE

    @classmethod
    def of(cls, chunks: list[np.ndarray]) -> StoredDigests:
        """One array of every chunk's digests, copied in one chunk at a time (each freed once copied: the
        peak is the array and one page of digests, not twice the array), sorted in place."""
        digests = np.empty(sum(len(chunk) for chunk in chunks), dtype=DIGEST_DTYPE)
        at = 0
        while chunks:
            chunk = chunks.pop()
            digests[at : at + len(chunk)] = chunk
            at += len(chunk)
        digests.sort()
        return cls(digests)

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, bytes) or len(digest) != DIGEST_BYTES or not len(self.digests):
            return False
        wanted = np.array(digest, dtype=DIGEST_DTYPE)
        at = int(np.searchsorted(self.digests, wanted))
        return at < len(self.digests) and bool(self.digests[at] == wanted)

    def __len__(self) -> int:
        return len(self.digests)


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

    def profile_digests(
        self, page_limit: int | None = None, segments: int = DIGEST_SCAN_SEGMENTS
    ) -> StoredDigests:
        """The digest of every stored profile (an item without one, written before digests were, has
        none): a parallel Scan projecting the digest, ``segments`` segments (``Segment``/``TotalSegments``)
        on as many threads, each following its own paginator on the shared boto3 client (clients are
        thread-safe, resources and tables are not), page by page (1 MB of items each, at most
        ``page_limit`` items when set). A Scan is billed by the size of the items it reads, not of what it
        projects: 0.5 read unit per 4 KB, eventually consistent; segments change the time, not the bill.
        Any segment's failure fails the whole read. Held as one sorted array of 16-byte digests
        (``StoredDigests``): 16 bytes a shopper, 83 MB for 5.2M."""
        client = self._dynamodb.meta.client  # the resource's: it deserialises items as the resource does
        pagination = {} if page_limit is None else {"PageSize": page_limit}

        def segment(number: int) -> list[np.ndarray]:
            pages = client.get_paginator("scan").paginate(
                TableName=self.users_table,
                ProjectionExpression="#d",
                ExpressionAttributeNames={"#d": DIGEST},
                Segment=number,
                TotalSegments=segments,
                PaginationConfig=pagination,
            )
            return [
                np.array(
                    [bytes.fromhex(str(item[DIGEST])) for item in page.get("Items", []) if DIGEST in item],
                    dtype=DIGEST_DTYPE,
                )
                for page in pages
            ]

        with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="digest-scan") as pool:
            chunks = [chunk for found in pool.map(segment, range(segments)) for chunk in found]
        return StoredDigests.of(chunks)

    def erase_user(self, user_id: str, erased_at: float) -> None:
        """Deletes the profile and the session (events, seen ids, purchases), leaving an erasure marker
        that keeps the shopper's events still on the stream out of a new session (``sessions``). The
        trending counters hold only per-item sums, no shopper id, so there is nothing personal in them."""
        self._dynamodb.Table(self.users_table).delete_item(Key={"user_id": user_id})
        self.mark_erased(user_id, erased_at)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
