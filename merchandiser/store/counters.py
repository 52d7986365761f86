"""Trending counters (counters table): one item per (hour, item) that the event processor adds to, one
summary per hour that the compactor writes and serving reads, and the arithmetic that ranks them.

Why this shape: DynamoDB bills an UpdateItem for the whole item it changes and refuses items over 400 KB,
so one item holding every item's count for an hour grew to hundreds of write units per update and, past
about 100 requests a second, over the limit. Here every write touches a tiny item (2 write units in a
transaction, whatever the load) and serving reads one small summary per hour:

- count items, ``{bucket: "YYYYMMDDHH#<p>", item_id, count, expires_at}``: the processor's atomic
  ``ADD count`` per distinct (hour, item) of a batch, 99 to a TransactWriteItems (``add_counts``). ``p`` =
  sha256 of the item id mod ``TRENDING_PARTITIONS``, so one hot hour's writes spread over that many
  partition keys;
- the dirty set, ``{bucket: "#dirty", item_id: "#dirty", hours: {"YYYYMMDDHH", ...}}``: each transaction of
  counts adds their hours to it (``ADD``), so no count is ever written without its hour marked;
- summaries, ``{bucket: "YYYYMMDDHH", item_id: "#top", top: {item_id: count}, expires_at}``: the
  compactor (``merchandiser.stream.compaction``) takes the dirty hours out of the set (``DELETE``) *before*
  reading them, Queries each hour's partitions and puts the ``TRENDING_TOP_PER_HOUR`` largest counts. A
  count written meanwhile either lands before its Query or re-dirties the hour: none is lost.

``Counters.trending`` reads the window's summaries (one BatchGetItem per 100 hours) and sums them decayed.
Item ids start with a letter or digit (``schemas.ID_PATTERN``), so "#dirty" and "#top" never collide with
one; no shopper id is stored here. The arithmetic is pure, so it is tested without DynamoDB.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.store.dynamo import Tables, to_dynamo

BUCKET_FORMAT = "%Y%m%d%H"
# Partition keys per hour: a hot hour's item writes spread over this many keys. Changing it strands the
# counts already written under other partition numbers until their hours are compacted again.
TRENDING_PARTITIONS = 4
# Items kept in an hour's summary. Its size stays far under DynamoDB's 400 KB item limit: at most 1,000 x
# (128-character id + 21-byte number + 3 bytes of map entry) = 152 KB with the longest ids
# ``schemas.ID_PATTERN`` allows, about 35 KB with 12-character ids (``SUMMARY_MAX_BYTES``). An item outside
# an hour's top 1,000 counts for nothing in that hour: trending lists are at most a few hundred long.
TRENDING_TOP_PER_HOUR = 1_000
MAX_ITEM_ID_CHARS = 128  # schemas.ID_PATTERN
DYNAMODB_MAX_NUMBER_BYTES = 21
SUMMARY_MAX_BYTES = TRENDING_TOP_PER_HOUR * (MAX_ITEM_ID_CHARS + DYNAMODB_MAX_NUMBER_BYTES + 3) + 100
MAX_WINDOW_HOURS = 7 * 24
# An event older than the longest window can never show in a trending answer: it is not counted.
MAX_COUNTED_AGE = timedelta(hours=MAX_WINDOW_HOURS)
# A count or summary outlives the longest window by a day after its write, then DynamoDB's TTL deletes it.
BUCKET_TTL = timedelta(hours=MAX_WINDOW_HOURS + 24)
COUNTERS_PARTITION_KEY = "bucket"
COUNTERS_SORT_KEY = "item_id"
COUNT_ATTRIBUTE = "count"  # a DynamoDB reserved word: always through an expression attribute name
DIRTY_KEY = {COUNTERS_PARTITION_KEY: "#dirty", COUNTERS_SORT_KEY: "#dirty"}
DIRTY_ATTRIBUTE = "hours"
SUMMARY_ITEM = "#top"
# TransactWriteItems takes at most 100 actions: 99 counts and the dirty set's ADD.
COUNTS_PER_TRANSACTION = 99
COUNT_ATTEMPTS = 3  # a transaction cancelled by a conflict is tried twice more
CONFLICT_BACKOFF_SECONDS = 0.02
SUMMARY_ATTRIBUTE = "top"


def bucket_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def bucket_key(moment: datetime) -> str:
    """The hour a moment falls in: ``YYYYMMDDHH`` (UTC)."""
    return bucket_start(moment).strftime(BUCKET_FORMAT)


def bucket_keys(now: datetime, window_hours: int) -> list[str]:
    """The ``window_hours`` hours ending with the current one, newest first."""
    if not 1 <= window_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"window_hours must be within 1..{MAX_WINDOW_HOURS}, not {window_hours}")
    start = bucket_start(now)
    return [bucket_key(start - timedelta(hours=age)) for age in range(window_hours)]


def item_partition(item_id: str) -> int:
    """The write partition of an item's counts: sha256 of its id (the same in every container, unlike
    ``hash()``), so an item's counts of an hour are one item and the hour's items spread evenly."""
    return int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:4], "big") % TRENDING_PARTITIONS


def partition_key(hour: str, partition: int) -> str:
    """The partition key of one write partition of an hour: ``YYYYMMDDHH#<p>``."""
    if not 0 <= partition < TRENDING_PARTITIONS:
        raise ValueError(f"partition must be within 0..{TRENDING_PARTITIONS - 1}, not {partition}")
    return f"{hour}#{partition}"


def count_key(hour: str, item_id: str) -> dict[str, str]:
    """The key of an item's count in an hour."""
    return {COUNTERS_PARTITION_KEY: partition_key(hour, item_partition(item_id)), COUNTERS_SORT_KEY: item_id}


def summary_key(hour: str) -> dict[str, str]:
    return {COUNTERS_PARTITION_KEY: hour, COUNTERS_SORT_KEY: SUMMARY_ITEM}


def counting_bucket(event_time: datetime, now: datetime) -> str | None:
    """The hour an event counts in: its own (a clock ahead of ours counts now), or None if too old."""
    moment = min(event_time, now)
    if now - moment > MAX_COUNTED_AGE:
        return None
    return bucket_key(moment)


def conflicted(error: ClientError) -> bool:
    """A transaction cancelled because another one touched one of its items at the same time."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    return any(r.get("Code") == "TransactionConflict" for r in error.response.get("CancellationReasons", []))


def dirty_update(action: str, hours: set[str]) -> dict[str, Any]:
    """The dirty set's UpdateItem (``ADD`` or ``DELETE`` of ``hours``), alone or as a transaction's action."""
    return {
        "Key": DIRTY_KEY,
        "UpdateExpression": f"{action} #h :h",
        "ExpressionAttributeNames": {"#h": DIRTY_ATTRIBUTE},
        "ExpressionAttributeValues": {":h": hours},
    }


def top_counts(counts: Mapping[str, float], n: int = TRENDING_TOP_PER_HOUR) -> dict[str, float]:
    """The ``n`` largest positive counts; ties broken by item id, as ``rank_trending`` breaks them."""
    return dict(rank_trending(counts, n))


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
    pairs = ((item, score) for item, score in scores.items() if item not in skip and score > 0)
    return heapq.nsmallest(k, pairs, key=lambda pair: (-pair[1], pair[0]))


class Counters(Tables):
    def trending(
        self, now: datetime, window_hours: int, half_life_hours: float | None = None
    ) -> dict[str, float]:
        """Weighted event counts per item over the last ``window_hours`` hours, from each hour's summary
        (one BatchGetItem per 100 hours); rank them with ``rank_trending``. An hour not compacted yet
        counts for nothing until the compactor's next run."""
        hours = bucket_keys(now, window_hours)
        found = self._batch_get_keys(
            self._counters(), [summary_key(hour) for hour in hours], consistent=False
        )
        by_hour = {str(item[COUNTERS_PARTITION_KEY]): item.get(SUMMARY_ATTRIBUTE, {}) for item in found}
        buckets = [{item: float(n) for item, n in by_hour.get(hour, {}).items()} for hour in hours]
        return decayed_sum(buckets, half_life_hours)

    def add_counts(
        self,
        counts: Mapping[tuple[str, str], float],
        expires_at: int,
        token: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Adds each (hour, item)'s count and marks those hours dirty, in one TransactWriteItems per
        ``COUNTS_PER_TRANSACTION`` counts (the dirty set's ADD in each): all of a transaction or none of it,
        so a count is never written without its hour marked. Returns the calls made.

        Why transactions: an ADD per count as its own UpdateItem cost ~1.3 ms of botocore CPU each (the
        events bench), three times the processor's other work per event; a transaction of 100 costs ~0.1 ms
        a count, for 2 write units a count instead of 1. A transaction another one cancels
        (``TransactionConflict``: both touched a hot item's count at once) applied nothing: it is retried,
        ``COUNT_ATTEMPTS`` times in all. ``token`` (the batch's identity) makes each transaction's
        ``ClientRequestToken``, so botocore's own retry of a timed-out call never adds twice."""
        ordered = sorted(counts.items())
        calls = 0
        for start in range(0, len(ordered), COUNTS_PER_TRANSACTION):
            chunk = ordered[start : start + COUNTS_PER_TRANSACTION]
            actions = [
                self._count_action(hour, item_id, count, expires_at) for (hour, item_id), count in chunk
            ]
            actions.append(self._dirty_action({hour for (hour, _), _ in chunk}))
            for attempt in range(COUNT_ATTEMPTS):
                request = hashlib.sha256(f"{token}#{start}#{attempt}".encode()).hexdigest()[:36]
                calls += 1
                try:
                    self._dynamodb.meta.client.transact_write_items(
                        TransactItems=actions, ClientRequestToken=request
                    )
                    break
                except ClientError as error:
                    if not conflicted(error) or attempt == COUNT_ATTEMPTS - 1:
                        raise
                    sleep(CONFLICT_BACKOFF_SECONDS * 2**attempt)
        return calls

    def _count_action(self, hour: str, item_id: str, count: float, expires_at: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._counters(),
                "Key": count_key(hour, item_id),
                "UpdateExpression": "ADD #n :n SET expires_at = :ttl",
                "ExpressionAttributeNames": {"#n": COUNT_ATTRIBUTE},
                "ExpressionAttributeValues": {":n": to_dynamo(float(count)), ":ttl": expires_at},
            }
        }

    def _dirty_action(self, hours: set[str]) -> dict[str, Any]:
        return {"Update": {"TableName": self._counters(), **dirty_update("ADD", hours)}}

    def mark_dirty(self, hours: Iterable[str]) -> None:
        """Adds hours to the set the compactor works through (one UpdateItem)."""
        self._dirty_set("ADD", hours)

    def clear_dirty(self, hours: Iterable[str]) -> None:
        """Takes hours out of the dirty set (one UpdateItem); a count written after it re-adds its hour."""
        self._dirty_set("DELETE", hours)

    def dirty_hours(self) -> set[str]:
        """The hours written since their last compaction (strongly consistent)."""
        response = self.table(self._counters()).get_item(Key=DIRTY_KEY, ConsistentRead=True)
        return {str(hour) for hour in response.get("Item", {}).get(DIRTY_ATTRIBUTE, set())}

    def hour_counts(self, hour: str) -> dict[str, float]:
        """Every item's count of an hour: a strongly consistent Query per write partition, following its
        pages. Strongly consistent because the compactor has already taken the hour out of the dirty set:
        a count written just before, missed by an eventually consistent read, would wait for the hour's
        next count to be summarised."""
        table = self.table(self._counters())
        counts: dict[str, float] = {}
        for partition in range(TRENDING_PARTITIONS):
            request: dict[str, Any] = {
                "KeyConditionExpression": "#b = :b",
                "ProjectionExpression": "#i, #n",
                "ExpressionAttributeNames": {
                    "#b": COUNTERS_PARTITION_KEY,
                    "#i": COUNTERS_SORT_KEY,
                    "#n": COUNT_ATTRIBUTE,
                },
                "ExpressionAttributeValues": {":b": partition_key(hour, partition)},
                "ConsistentRead": True,
            }
            while True:
                page = table.query(**request)
                for item in page.get("Items", []):
                    counts[str(item[COUNTERS_SORT_KEY])] = float(item.get(COUNT_ATTRIBUTE, 0))
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return counts

    def put_summary(self, hour: str, top: Mapping[str, float], expires_at: int) -> None:
        """The hour's summary, replacing the previous one (one PutItem)."""
        self.table(self._counters()).put_item(
            Item={**summary_key(hour), SUMMARY_ATTRIBUTE: to_dynamo(dict(top)), "expires_at": expires_at}
        )

    def _dirty_set(self, action: str, hours: Iterable[str]) -> None:
        names = set(hours)
        if names:
            self.table(self._counters()).update_item(**dirty_update(action, names))

    def _counters(self) -> str:
        if not self.counters_table:
            raise RuntimeError("this store was built without a counters table")
        return self.counters_table


def create_counters_table(dynamodb: Any, table_name: str) -> None:
    """The table as the data stack declares it (on demand, ``bucket`` + ``item_id``, TTL): for tests and
    benches that build tables by hand. ``dynamodb`` is a boto3 DynamoDB client."""
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": COUNTERS_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": COUNTERS_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": COUNTERS_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": COUNTERS_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
