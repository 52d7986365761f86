"""Hourly trending buckets and their ranking: pure arithmetic with known answers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from merchandiser.store.counters import (
    MAX_WINDOW_HOURS,
    TRENDING_SHARDS,
    batch_shard,
    bucket_key,
    bucket_keys,
    counting_bucket,
    decayed_sum,
    rank_trending,
    shard_key,
)

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def test_bucket_keys_are_the_last_hours_newest_first_and_no_shopper_id_can_take_them():
    assert bucket_keys(NOW, 3) == [
        "#trending#2026112210",
        "#trending#2026112209",
        "#trending#2026112208",
    ]
    assert bucket_key(datetime(2026, 1, 1, 0, 59, tzinfo=UTC)) == "#trending#2026010100"


def test_a_batch_writes_to_one_shard_chosen_by_its_first_event_id_and_batches_spread_evenly():
    assert shard_key("#trending#2026112210", 3) == "#trending#2026112210#3"
    # the same batch (a retry, in any order) always picks the same shard
    assert batch_shard(["e2", "e1", "e9"]) == batch_shard(["e9", "e1"]) == batch_shard(["e1"])
    # and 4,000 batches land on every shard, none with more than 30% of them
    spread = Counter(batch_shard([f"batch-{n}-first", f"batch-{n}-z"]) for n in range(4000))
    assert set(spread) == set(range(TRENDING_SHARDS)) and max(spread.values()) < 0.3 * 4000


@pytest.mark.parametrize("hours", [0, MAX_WINDOW_HOURS + 1])
def test_a_window_outside_the_kept_buckets_is_refused(hours):
    with pytest.raises(ValueError, match="window_hours"):
        bucket_keys(NOW, hours)


def test_an_event_counts_in_its_own_hour_a_future_one_now_and_a_too_old_one_nowhere():
    assert counting_bucket(NOW - timedelta(hours=2), NOW) == "#trending#2026112208"
    assert counting_bucket(NOW + timedelta(days=1), NOW) == "#trending#2026112210"
    assert counting_bucket(NOW - timedelta(days=8), NOW) is None


def test_decayed_sum_halves_a_bucket_per_half_life():
    buckets = [{"a": 2.0}, {"a": 4.0, "b": 8.0}]
    assert decayed_sum(buckets) == {"a": 6.0, "b": 8.0}
    assert decayed_sum(buckets, half_life_hours=1.0) == {"a": 4.0, "b": 4.0}


def test_rank_trending_orders_by_score_then_id_and_skips_excluded_and_zero():
    scores = {"b": 3.0, "a": 3.0, "c": 5.0, "d": 0.0, "e": 1.0}
    assert rank_trending(scores, k=3) == [("c", 5.0), ("a", 3.0), ("b", 3.0)]
    assert rank_trending(scores, k=10, exclude={"c"}) == [("a", 3.0), ("b", 3.0), ("e", 1.0)]
