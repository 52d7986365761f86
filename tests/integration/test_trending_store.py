"""Trending counters in DynamoDB (moto): atomic adds per hour bucket, reads over a window, a TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from merchandiser.store import BUCKET_TTL, MAX_WINDOW_HOURS, FeatureStore, bucket_key, rank_trending

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def test_adds_accumulate_and_the_window_sums_the_last_hours(aws):
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    ttl = int((NOW + BUCKET_TTL).timestamp())
    store.add_trending(bucket_key(NOW), {"a": 1.0, "b": 8.0}, ttl)
    store.add_trending(bucket_key(NOW), {"a": 2.0}, ttl)
    store.add_trending(bucket_key(NOW - timedelta(hours=1)), {"a": 4.0, "user_id": 1.0}, ttl)
    store.add_trending(bucket_key(NOW - timedelta(hours=5)), {"c": 100.0}, ttl)
    assert store.trending(NOW, window_hours=1) == {"a": 3.0, "b": 8.0}
    assert store.trending(NOW, window_hours=2) == {"a": 7.0, "b": 8.0, "user_id": 1.0}
    assert store.trending(NOW, window_hours=2, half_life_hours=1.0) == {"a": 5.0, "b": 8.0, "user_id": 0.5}
    assert rank_trending(store.trending(NOW, 24), k=2) == [("c", 100.0), ("b", 8.0)]
    stored = aws.dynamodb.Table("sessions").get_item(Key={"user_id": bucket_key(NOW)})["Item"]
    assert int(stored["expires_at"]) == ttl  # DynamoDB's TTL deletes a bucket a day after any window needs it


def test_a_batch_naming_many_items_splits_the_expression_under_the_4kb_limit(aws):
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    counts = {f"item-{n:04d}": 1.0 for n in range(500)}
    calls = store.add_trending(bucket_key(NOW), counts, expires_at=1)
    assert calls > 1
    assert store.trending(NOW, 1) == counts


def test_a_window_of_a_week_reads_168_buckets_in_two_calls(aws):
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    calls: list[str] = []
    aws.dynamodb.meta.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    assert store.trending(NOW, MAX_WINDOW_HOURS) == {}
    assert calls == ["BatchGetItem", "BatchGetItem"]
