"""Trending items from hourly counters: bucket keys, and the pure arithmetic that ranks them.

The event processor adds each batch's event weights to the counter of the hour the events happened
in (one atomic ADD per hour bucket per batch); serving reads the last ``window_hours`` buckets and
ranks items by their decayed sum. Everything here is pure, so it is tested without DynamoDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

# Counter items live in the sessions table under keys no shopper id can take: ``schemas.ID_PATTERN``
# makes an id start with a letter or digit, and these start with "#".
TRENDING_KEY_PREFIX = "#trending#"
BUCKET_FORMAT = "%Y%m%d%H"
MAX_WINDOW_HOURS = 7 * 24
# An event older than the longest window can never show in a trending answer: it is not counted.
MAX_COUNTED_AGE = timedelta(hours=MAX_WINDOW_HOURS)
# A bucket outlives the longest window by a day, then DynamoDB's TTL deletes it.
BUCKET_TTL = timedelta(hours=MAX_WINDOW_HOURS + 24)
# Counter attributes are named after the item with this prefix, so an item id can never collide
# with the key or the TTL attribute.
COUNT_ATTRIBUTE_PREFIX = "c#"


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
