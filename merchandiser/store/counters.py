"""Trending counters (sessions table): hourly buckets of weighted event counts, write-sharded, and the
arithmetic that ranks them.

The event processor adds each batch's event weights to the counter of the hour the events happened
in: one atomic ADD per hour bucket per batch, on one of the hour's ``TRENDING_SHARDS`` shard items,
chosen per batch (``batch_shard``: a hash of the batch's first event id). A hot item's counts thus
spread over every shard of its hour instead of making one key take every batch's write (DynamoDB gives
one partition 1,000 write units a second, and an UpdateItem pays for the whole item it changes); serving
reads the last ``window_hours`` hours' shards (one BatchGetItem up to 25 hours), sums each hour's shards
and ranks items by their decayed sum. The arithmetic is pure, so it is tested without DynamoDB.

{user_id: "#trending#YYYYMMDDHH#<shard>", "c#<item_id>": weighted count, expires_at}: no shopper id in
them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from merchandiser.store.dynamo import Tables, to_dynamo

# Counter items live in the sessions table under keys no shopper id can take: ``schemas.ID_PATTERN``
# makes an id start with a letter or digit, and these start with "#".
TRENDING_KEY_PREFIX = "#trending#"
BUCKET_FORMAT = "%Y%m%d%H"
# Shards per hour bucket: a window of up to 25 hours is 100 keys, one BatchGetItem. Changing it strands
# the counts already written under other shard numbers for the rest of their window.
TRENDING_SHARDS = 4
MAX_WINDOW_HOURS = 7 * 24
# An event older than the longest window can never show in a trending answer: it is not counted.
MAX_COUNTED_AGE = timedelta(hours=MAX_WINDOW_HOURS)
# A bucket outlives the longest window by a day, then DynamoDB's TTL deletes it.
BUCKET_TTL = timedelta(hours=MAX_WINDOW_HOURS + 24)
# Counter attributes are named after the item with this prefix, so an item id can never collide
# with the key or the TTL attribute.
COUNT_ATTRIBUTE_PREFIX = "c#"
# UpdateExpression is limited to 4 KB; one counter update stays well below it. 100 ADDs per call also
# covers a full batch of 100 events and stays within what moto's expression parser can recurse through.
MAX_EXPRESSION_CHARS = 3500
MAX_ADDS_PER_UPDATE = 100


def bucket_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def bucket_key(moment: datetime) -> str:
    return TRENDING_KEY_PREFIX + bucket_start(moment).strftime(BUCKET_FORMAT)


def bucket_keys(now: datetime, window_hours: int) -> list[str]:
    """The keys of the ``window_hours`` hourly buckets ending with the current one, newest first."""
    if not 1 <= window_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"window_hours must be within 1..{MAX_WINDOW_HOURS}, not {window_hours}")
    start = bucket_start(now)
    return [bucket_key(start - timedelta(hours=age)) for age in range(window_hours)]


def shard_key(bucket: str, shard: int) -> str:
    """The key of one shard of an hour bucket: ``#trending#YYYYMMDDHH#<shard>``."""
    if not 0 <= shard < TRENDING_SHARDS:
        raise ValueError(f"shard must be within 0..{TRENDING_SHARDS - 1}, not {shard}")
    return f"{bucket}#{shard}"


def batch_shard(event_ids: Iterable[str]) -> int:
    """The shard a batch writes to: sha256 of its smallest event id (stable if the batch is retried,
    uniform over batches, the same in every container, unlike ``hash()``)."""
    first = min(event_ids, default="")
    return int.from_bytes(hashlib.sha256(first.encode()).digest()[:4], "big") % TRENDING_SHARDS


def counting_bucket(event_time: datetime, now: datetime) -> str | None:
    """The bucket an event counts in: its own hour (a clock ahead of ours counts now), or None if too old."""
    moment = min(event_time, now)
    if now - moment > MAX_COUNTED_AGE:
        return None
    return bucket_key(moment)


def decayed_sum(
    buckets: Iterable[Mapping[str, float]], half_life_hours: float | None = None
) -> dict[str, float]:
    """Sums hourly counts given newest first; with a half-life a bucket ``h`` hours old weighs 2^(-h/half)."""
    scores: dict[str, float] = {}
    for age, counts in enumerate(buckets):
        factor = 1.0 if half_life_hours is None else 0.5 ** (age / half_life_hours)
        for item_id, count in counts.items():
            scores[item_id] = scores.get(item_id, 0.0) + factor * float(count)
    return scores


def rank_trending(
    scores: Mapping[str, float], k: int, exclude: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """The ``k`` best (item_id, score) pairs, best first; ties broken by item id so answers are stable."""
    skip = frozenset(exclude)
    ranked = sorted(((item, score) for item, score in scores.items() if item not in skip and score > 0),
                    key=lambda pair: (-pair[1], pair[0]))  # fmt: skip
    return ranked[:k]


class Counters(Tables):
    def trending(
        self, now: datetime, window_hours: int, half_life_hours: float | None = None
    ) -> dict[str, float]:
        """Weighted event counts per item over the last ``window_hours`` hourly buckets, each the sum of its
        shards (one BatchGetItem per 100 shard keys: 25 hours); rank them with ``rank_trending``."""
        hours = bucket_keys(now, window_hours)
        keys = [shard_key(hour, shard) for hour in hours for shard in range(TRENDING_SHARDS)]
        found = self._batch_get(self.sessions_table, keys, consistent=False)
        prefix = COUNT_ATTRIBUTE_PREFIX
        buckets: list[dict[str, float]] = []
        for hour in hours:
            counts: dict[str, float] = {}
            for shard in range(TRENDING_SHARDS):
                for name, value in found.get(shard_key(hour, shard), {}).items():
                    if name.startswith(prefix):
                        item = name[len(prefix) :]
                        counts[item] = counts.get(item, 0.0) + float(value)
            buckets.append(counts)
        return decayed_sum(buckets, half_life_hours)

    def add_trending(self, key: str, counts: Mapping[str, float], expires_at: int) -> int:
        """Atomic ADDs of weighted counts to one counter item (``shard_key``); returns the number of
        UpdateItem calls (one, unless a batch names so many items that the expression must be split)."""
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
            names[f"#c{number}"] = COUNT_ATTRIBUTE_PREFIX + item_id
            values[f":c{number}"] = to_dynamo(float(count))
        if clauses:
            flush()
        return calls
