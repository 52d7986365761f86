"""Hourly trending counts, their keys, the hour's summary and their ranking: pure arithmetic with known
answers."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from merchandiser.store.counters import (
    MAX_ITEM_ID_CHARS,
    MAX_WINDOW_HOURS,
    SUMMARY_MAX_BYTES,
    TRENDING_PARTITIONS,
    TRENDING_TOP_PER_HOUR,
    bucket_key,
    bucket_keys,
    count_key,
    counting_bucket,
    decayed_sum,
    item_partition,
    partition_key,
    rank_trending,
    summary_key,
    top_counts,
)

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def test_bucket_keys_are_the_last_hours_newest_first():
    assert bucket_keys(NOW, 3) == ["2026112210", "2026112209", "2026112208"]
    assert bucket_key(datetime(2026, 1, 1, 0, 59, tzinfo=UTC)) == "2026010100"


def test_an_items_count_has_one_key_per_hour_and_the_hours_items_spread_over_the_partitions():
    # Given an item: its counts of an hour are always the same item, under one of the hour's partitions
    key = count_key("2026112210", "sku-1")
    assert key == {"bucket": f"2026112210#{item_partition('sku-1')}", "item_id": "sku-1"}
    assert count_key("2026112210", "sku-1") == key
    # And 4,000 items land on every partition, none with more than 30% of them
    spread = Counter(item_partition(f"sku-{n}") for n in range(4000))
    assert set(spread) == set(range(TRENDING_PARTITIONS)) and max(spread.values()) < 0.3 * 4000
    # And the summary's key can never be an item's count: an item id starts with a letter or digit
    assert summary_key("2026112210") == {"bucket": "2026112210", "item_id": "#top"}


def test_a_partition_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="partition"):
        partition_key("2026112210", TRENDING_PARTITIONS)


@pytest.mark.parametrize("hours", [0, MAX_WINDOW_HOURS + 1])
def test_a_window_outside_the_kept_buckets_is_refused(hours):
    with pytest.raises(ValueError, match="window_hours"):
        bucket_keys(NOW, hours)


def test_an_event_counts_in_its_own_hour_a_future_one_now_and_a_too_old_one_nowhere():
    assert counting_bucket(NOW - timedelta(hours=2), NOW) == "2026112208"
    assert counting_bucket(NOW + timedelta(days=1), NOW) == "2026112210"
    assert counting_bucket(NOW - timedelta(days=8), NOW) is None


def test_the_summary_keeps_the_largest_counts_ties_by_id_and_drops_zero():
    counts = {"b": 3.0, "a": 3.0, "c": 5.0, "d": 0.0, "e": 1.0}
    assert top_counts(counts, 3) == {"c": 5.0, "a": 3.0, "b": 3.0}
    assert top_counts(counts, 10) == {"c": 5.0, "a": 3.0, "b": 3.0, "e": 1.0}


def test_a_truncated_summary_is_the_brute_force_top_of_a_large_hour():
    # Given an hour of 5,000 items with random counts (fixed seed)
    rng = random.Random(7)
    counts = {f"sku-{n:05d}": float(rng.randint(1, 50)) for n in range(5000)}
    # When summarised
    top = top_counts(counts)
    # Then it keeps exactly TRENDING_TOP_PER_HOUR items, the same as sorting everything
    expected = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:TRENDING_TOP_PER_HOUR]
    assert list(top.items()) == expected


def test_the_largest_summary_stays_far_under_the_400_kb_item_limit():
    # the longest ids, the largest numbers DynamoDB stores: the bound the constant states
    assert SUMMARY_MAX_BYTES < 200 * 1024 < 400 * 1024
    assert TRENDING_TOP_PER_HOUR * MAX_ITEM_ID_CHARS < SUMMARY_MAX_BYTES


def test_decayed_sum_halves_a_bucket_per_half_life():
    buckets = [{"a": 2.0}, {"a": 4.0, "b": 8.0}]
    assert decayed_sum(buckets) == {"a": 6.0, "b": 8.0}
    assert decayed_sum(buckets, half_life_hours=1.0) == {"a": 4.0, "b": 4.0}


def test_rank_trending_orders_by_score_then_id_and_skips_excluded_and_zero():
    scores = {"b": 3.0, "a": 3.0, "c": 5.0, "d": 0.0, "e": 1.0}
    assert rank_trending(scores, k=3) == [("c", 5.0), ("a", 3.0), ("b", 3.0)]
    assert rank_trending(scores, k=10, exclude={"c"}) == [("a", 3.0), ("b", 3.0), ("e", 1.0)]
