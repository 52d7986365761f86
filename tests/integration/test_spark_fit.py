"""Spark's retrieval aggregations against the single-machine code they replace, on the same data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from merchandiser.catalog import fit_neighbours
from tests.tiny_shop import shop
from training.events import EventArrays, ListSettings, epoch_seconds
from training.fit import Hyperparameters, build_catalog, fit_retrieval
from training.spark_fit import decayed_counts, fit_retrieval_spark, last_seen, neighbours, spark_session

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = spark_session(threads=1)
    yield session
    session.stop()


def test_spark_neighbours_equal_the_single_machine_ones(spark: Any) -> None:
    # Given random (group, item, value) memberships, some repeated, some groups of one item
    rng = np.random.default_rng(11)
    groups = rng.integers(0, 40, size=400)
    rows = rng.integers(0, 30, size=400)
    values = rng.integers(1, 3, size=400).astype(np.float64)
    # When both compute the top 5 cosine neighbours (repeated pairs summed first, as the CSR does)
    expected = fit_neighbours(groups, rows, values, n_items=30, top_n=5)
    frame = (
        pd.DataFrame({"group": groups, "row": rows, "value": values})
        .groupby(["group", "row"], as_index=False)
        .sum()
    )
    got = neighbours(spark.createDataFrame(frame), n_items=30, top_n=5)
    # Then the same neighbours in the same order, with the same similarities
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.similarity, expected.similarity, rtol=1e-6)


@pytest.mark.parametrize(
    "settings",
    [
        ListSettings(7.0 * 24),
        ListSettings(6.0, "count", window_hours=48.0),
        ListSettings(72.0, "event_weight", window_hours=24.0 * 10),
    ],
    ids=["decayed", "counted-in-a-window", "weighted-in-a-window"],
)
def test_spark_lists_equal_the_single_machine_ones(spark: Any, settings: ListSettings) -> None:
    # Given events over 30 days that stop three days before the cut (a quiet spell: both measure the
    # window and the decay back from the latest event), and one event after the cut
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 20, size=200)
    weights = rng.choice([1.0, 2.0, 8.0], size=200)
    stamps = rng.uniform(0, 30 * 86_400, size=200)
    stamps[0] = 34 * 86_400.0
    now = 33 * 86_400.0
    expected = EventArrays(rows.astype(np.int64), weights, stamps, 20)
    events = spark.createDataFrame(pd.DataFrame({"row": rows, "weight": weights, "ts": stamps}))
    # When Spark computes the list
    got = decayed_counts(events, now, settings, 20)
    # Then it is the single-machine list
    np.testing.assert_allclose(got, expected.scores(now, settings), rtol=1e-5)


def test_spark_last_seen_equals_the_single_machine_one(spark: Any) -> None:
    # Given events on 15 of 20 items
    rng = np.random.default_rng(6)
    rows = rng.integers(0, 15, size=100)
    stamps = rng.uniform(0, 86_400, size=100)
    events = spark.createDataFrame(pd.DataFrame({"row": rows, "weight": np.ones(100), "ts": stamps}))
    # When both take each item's latest event
    expected = EventArrays(rows.astype(np.int64), np.ones(100), stamps, 20).last_seen()
    # Then the same moments, NaN for the five items without events
    np.testing.assert_array_equal(last_seen(events, 20), expected)
    assert np.isnan(expected[15:]).all()


def test_spark_retrieval_equals_the_single_machine_one_with_tuned_values(spark: Any) -> None:
    # Given the tiny shop and values a tuning could choose: event weights, a windowed count trending, a
    # short recent half-life, a short co-occurrence window
    channels = shop()
    catalog = build_catalog(channels.items)
    hp = replace(
        Hyperparameters(),
        factors=8,
        iterations=3,
        view_weight=0.5,
        purchase_weight=6.0,
        trending_weighting="count",
        trending_window_days=10.0,
        recent_half_life_hours=12.0,
        recent_weighting="count",
        cooccurrence_items=5,
        min_segment_users=5,
    )
    now = epoch_seconds(channels.interactions["timestamp"].max()) + 3_600.0
    # When both engines learn retrieval
    local, local_histories = fit_retrieval(channels.interactions, catalog, now, hp, channels.users)
    remote, remote_histories = fit_retrieval_spark(
        spark, channels.interactions, catalog, now, hp, channels.users
    )
    # Then every aggregated signal is the same (ALS differs by construction and is not compared)
    np.testing.assert_allclose(remote.popularity, local.popularity, rtol=1e-5)
    for name in ("trending", "recent_popularity"):
        np.testing.assert_allclose(getattr(remote.signals, name), getattr(local.signals, name), rtol=1e-5)
    np.testing.assert_allclose(remote.signals.last_seen, local.signals.last_seen)
    assert sorted(remote.signals.segments) == sorted(local.signals.segments) != []
    for key, scores in local.signals.segments.items():
        np.testing.assert_allclose(remote.signals.segments[key], scores, rtol=1e-5)
    for name in ("also_viewed", "bought_together"):
        expected, got = getattr(local.signals, name), getattr(remote.signals, name)
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, expected.indices)
    assert remote.manifest["event_weights"] == local.manifest["event_weights"] == hp.event_weights()
    # and the shoppers' histories carry the tuned event weights
    assert remote_histories.keys() == local_histories.keys()
    some = sorted(local_histories)[0]
    assert remote_histories[some].weights == pytest.approx(local_histories[some].weights, rel=1e-6)
    # and the raw weights a served personal anchor reads (the stream's event weights, undecayed)
    for user in sorted(local_histories)[:20]:
        expected = local_histories[user].raw_weights
        assert expected and remote_histories[user].raw_weights == pytest.approx(expected, rel=1e-9)
