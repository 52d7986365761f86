"""Trending counters in DynamoDB (moto): atomic adds per shard of an hour bucket, reads over a window
summing the shards, a TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from merchandiser.store import (
    BUCKET_TTL,
    MAX_WINDOW_HOURS,
    TRENDING_SHARDS,
    FeatureStore,
    bucket_key,
    rank_trending,
    shard_key,
)

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def test_adds_accumulate_and_the_window_sums_the_last_hours(aws):
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    ttl = int((NOW + BUCKET_TTL).timestamp())
    store.add_trending(shard_key(bucket_key(NOW), 0), {"a": 1.0, "b": 8.0}, ttl)
    store.add_trending(shard_key(bucket_key(NOW), 3), {"a": 2.0}, ttl)  # another shard of the same hour
    store.add_trending(shard_key(bucket_key(NOW - timedelta(hours=1)), 1), {"a": 4.0, "user_id": 1.0}, ttl)
    store.add_trending(shard_key(bucket_key(NOW - timedelta(hours=5)), 2), {"c": 100.0}, ttl)
    assert store.trending(NOW, window_hours=1) == {"a": 3.0, "b": 8.0}
    assert store.trending(NOW, window_hours=2) == {"a": 7.0, "b": 8.0, "user_id": 1.0}
    assert store.trending(NOW, window_hours=2, half_life_hours=1.0) == {"a": 5.0, "b": 8.0, "user_id": 0.5}
    assert rank_trending(store.trending(NOW, 24), k=2) == [("c", 100.0), ("b", 8.0)]
    stored = aws.dynamodb.Table("sessions").get_item(Key={"user_id": shard_key(bucket_key(NOW), 0)})["Item"]
    assert int(stored["expires_at"]) == ttl  # DynamoDB's TTL deletes a bucket a day after any window needs it


def test_a_batch_naming_many_items_splits_the_expression_under_the_4kb_limit(aws):
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    counts = {f"item-{n:04d}": 1.0 for n in range(500)}
    calls = store.add_trending(shard_key(bucket_key(NOW), 0), counts, expires_at=1)
    assert calls > 1
    assert store.trending(NOW, 1) == counts


def test_a_day_is_one_batch_get_and_a_week_reads_its_672_shards_in_seven(aws):
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    calls: list[str] = []
    aws.dynamodb.meta.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    assert store.trending(NOW, 25) == {}
    assert calls == ["BatchGetItem"]
    calls.clear()
    assert store.trending(NOW, MAX_WINDOW_HOURS) == {}
    assert calls == ["BatchGetItem"] * -(-MAX_WINDOW_HOURS * TRENDING_SHARDS // 100) == ["BatchGetItem"] * 7


def test_a_shard_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="shard"):
        shard_key(bucket_key(NOW), TRENDING_SHARDS)
