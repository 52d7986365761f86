"""Trending counters in DynamoDB (moto): one item per (hour, item) with atomic adds, the compactor's hourly
summaries, reads over a window of summaries, a TTL on each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    """What the event processor does for one batch: an ADD per item, then the hour marked dirty."""
    for item_id, count in counts.items():
        store.add_count(bucket_key(moment), item_id, count, TTL)
    store.mark_dirty([bucket_key(moment)])


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
