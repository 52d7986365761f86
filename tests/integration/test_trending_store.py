"""Trending counters in DynamoDB (moto): one item per (hour, item) with atomic adds, the compactor's hourly
summaries, reads over a window of summaries, a TTL on each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from merchandiser.store import (
    BUCKET_TTL,
    MAX_WINDOW_HOURS,
    FeatureStore,
    bucket_key,
    count_key,
    rank_trending,
    summary_key,
)
from merchandiser.stream import TrendingCompactor

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TTL = int((NOW + BUCKET_TTL).timestamp())


def store_of(aws) -> FeatureStore:  # type: ignore[no-untyped-def]
    return FeatureStore(aws.dynamodb, "users", "sessions", counters_table="counters")


def add(store: FeatureStore, moment: datetime, counts: dict[str, float]) -> None:
    """What the event processor does for one batch: an ADD per item and the hour marked dirty, in one
    transaction."""
    hour = bucket_key(moment)
    store.add_counts(
        {(hour, item_id): n for item_id, n in counts.items()}, TTL, token=f"{hour}{sorted(counts)}"
    )


def test_adds_accumulate_per_item_and_the_window_sums_the_compacted_hours(aws):
    # Given counts over three hours, the same item added twice in the current one
    store = store_of(aws)
    add(store, NOW, {"a": 1.0, "b": 8.0})
    add(store, NOW, {"a": 2.0})
    add(store, NOW - timedelta(hours=1), {"a": 4.0, "user_id": 1.0})
    add(store, NOW - timedelta(hours=5), {"c": 100.0})
    # Then nothing shows before the compactor's run
    assert store.trending(NOW, window_hours=24) == {}
    # When it runs
    outcome = TrendingCompactor(store, clock=NOW.timestamp).run()
    # Then it compacted the three hours, and the window sums their summaries
    assert outcome.compacted == ["2026112205", "2026112209", "2026112210"] and outcome.failed == []
    assert store.trending(NOW, window_hours=1) == {"a": 3.0, "b": 8.0}
    assert store.trending(NOW, window_hours=2) == {"a": 7.0, "b": 8.0, "user_id": 1.0}
    assert store.trending(NOW, window_hours=2, half_life_hours=1.0) == {"a": 5.0, "b": 8.0, "user_id": 0.5}
    assert rank_trending(store.trending(NOW, 24), k=2) == [("c", 100.0), ("b", 8.0)]
    # And the dirty set is empty: the next run reads one item and writes nothing
    assert store.dirty_hours() == set() and TrendingCompactor(store).run().compacted == []
    # And DynamoDB's TTL deletes a count and a summary a day after any window needs them
    table = aws.dynamodb.Table("counters")
    stored = table.get_item(Key=count_key(bucket_key(NOW), "a"))["Item"]
    assert float(stored["count"]) == 3.0 and int(stored["expires_at"]) == TTL
    assert int(table.get_item(Key=summary_key(bucket_key(NOW)))["Item"]["expires_at"]) == TTL


def test_an_hour_with_more_items_than_the_summary_keeps_its_largest(aws):
    # Given an hour of 12 items
    store = store_of(aws)
    add(store, NOW, {f"sku-{n:02d}": float(n) for n in range(12)})
    # When compacted into a summary of 5
    outcome = TrendingCompactor(store, top=5, clock=NOW.timestamp).run()
    # Then the summary holds the 5 largest counts, and the run says the hour was truncated
    assert outcome.items_read == 12 and outcome.truncated == 1
    assert store.trending(NOW, 1) == {f"sku-{n:02d}": float(n) for n in range(7, 12)}


def test_a_day_is_one_batch_get_and_a_week_reads_its_168_summaries_in_two(aws):
    store = store_of(aws)
    calls: list[str] = []
    aws.dynamodb.meta.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    assert store.trending(NOW, 25) == {}
    assert calls == ["BatchGetItem"]
    calls.clear()
    assert store.trending(NOW, MAX_WINDOW_HOURS) == {}
    assert calls == ["BatchGetItem"] * 2


def test_the_compactor_reads_an_hour_strongly_consistent(aws):
    # Given an hour already taken out of the dirty set, a count written just before must be in its Query
    store = store_of(aws)
    add(store, NOW, {"a": 1.0})
    queries: list[dict] = []
    aws.dynamodb.meta.client.meta.events.register(
        "before-parameter-build.dynamodb.Query", lambda params, **_: queries.append(dict(params))
    )
    # When the hour's counts are read
    assert store.hour_counts(bucket_key(NOW)) == {"a": 1.0}
    # Then every partition's Query is strongly consistent (an eventually consistent one could miss it)
    assert queries and all(query.get("ConsistentRead") is True for query in queries)


class _Refused:
    status_code = 400


def test_a_conflicted_transaction_is_retried_and_counts_once(aws):
    # Given a store whose first transaction another one cancels (both touched a hot item's count)
    store = store_of(aws)
    tokens: list[str] = []
    naps: list[float] = []

    def conflict_once(**_):  # type: ignore[no-untyped-def]
        if len(tokens) > 1:
            return None
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
        return _Refused(), {"Error": error, "CancellationReasons": [{"Code": "TransactionConflict"}]}

    events = aws.dynamodb.meta.client.meta.events
    events.register(
        "before-parameter-build.dynamodb.TransactWriteItems",
        lambda params, **_: tokens.append(params["ClientRequestToken"]),
    )
    events.register("before-call.dynamodb.TransactWriteItems", conflict_once)
    hour = bucket_key(NOW)
    # When a batch's counts are written
    calls = store.add_counts({(hour, "a"): 2.0}, TTL, token="e1", sleep=naps.append)
    # Then the second attempt applied them, once, after a pause, under a token of its own
    assert calls == 2 and len(naps) == 1 and len(set(tokens)) == 2
    assert store.hour_counts(hour) == {"a": 2.0} and store.dirty_hours() == {hour}


def test_a_transaction_conflicted_at_every_attempt_raises(aws):
    # Given a hot item every attempt conflicts on
    store = store_of(aws)
    naps: list[float] = []

    def conflict(**_):  # type: ignore[no-untyped-def]
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
        return _Refused(), {"Error": error, "CancellationReasons": [{"Code": "TransactionConflict"}]}

    aws.dynamodb.meta.client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict)
    # When a batch's counts are written, the last attempt's error reaches the caller (the processor counts
    # the events as uncounted), and nothing was applied
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        store.add_counts({(bucket_key(NOW), "a"): 2.0}, TTL, token="e1", sleep=naps.append)
    assert naps == [0.02, 0.04] and store.hour_counts(bucket_key(NOW)) == {}


def test_counts_go_99_to_a_transaction_with_their_hours(aws):
    # Given 250 counts over two hours
    store = store_of(aws)
    now, before = bucket_key(NOW), bucket_key(NOW - timedelta(hours=1))
    counts = {(hour, f"i{n}"): 1.0 for hour in (now, before) for n in range(125)}
    sizes: list[int] = []
    aws.dynamodb.meta.client.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems",
        lambda params, **_: sizes.append(len(params["TransactItems"])),
    )
    # When written
    assert store.add_counts(counts, TTL, token="e1") == 3
    # Then three transactions of at most 100 actions (99 counts + the dirty set) hold them all
    assert sizes == [100, 100, 53] and store.dirty_hours() == {now, before}
    assert len(store.hour_counts(now)) == len(store.hour_counts(before)) == 125
