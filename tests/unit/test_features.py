"""Ranker features on a hand-built catalog, checked value by value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from merchandiser.catalog import Catalog, ItemModel, Signals
from merchandiser.ranking import FEATURE_NAMES, ranking_features, source_ranks
from merchandiser.retrieval import Candidates, build_index
from merchandiser.shopper import UserState

DAY = 86_400.0
NOW = 100 * DAY


def catalog() -> Catalog:
    return Catalog(
        item_ids=np.array(["a", "b", "c", "d"]),
        titles=np.array(["A", "B", "C", "D"]),
        categories=np.array(["shoes", "shoes", "hats", "bags"]),
        brands=np.array(["x", "x", "y", "z"]),
        prices=np.array([10.0, 30.0, 40.0, np.nan]),
        created_at=np.array([90 * DAY, 50 * DAY, np.nan, 99 * DAY]),
        in_stock=np.array([True, True, True, False]),
    )


def hand_model(factors: np.ndarray, popularity: np.ndarray, signals: Signals | None = None) -> ItemModel:
    return ItemModel({}, catalog(), factors, popularity, build_index(factors, seed=7), signals)


def test_source_ranks_skip_absent_entries() -> None:
    # Given scores with one absent entry / When ranked / Then best is 0 and the absent one NaN
    ranks = source_ranks(np.array([0.1, np.nan, 0.9, 0.5]))
    assert ranks[[0, 2, 3]].tolist() == [2.0, 0.0, 1.0]
    assert math.isnan(ranks[1])


def test_features_of_a_known_user() -> None:
    # Given a user who bought a (10) and b (30), with 3 of their 4 history weight in shoes
    factors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    popularity = np.array([0.0, math.e - 1, 3.0, 1.0], dtype=np.float32)
    user = UserState(
        vector=np.array([0.5, 2.0], dtype=np.float32),
        history={0: 1.0, 1: 2.0, 2: 1.0},
        recent=[2],
        purchased=frozenset({0, 1}),
    )
    # And candidates c (ann + popularity) and d (popularity only)
    candidates = Candidates(
        rows=np.array([2, 3]),
        scores={"ann": np.array([2.5, np.nan]), "popularity": np.array([3.0, 1.0])},
        sources=["ann", "popularity"],
    )
    # When the features are built
    trending = np.array([0.0, 0.0, math.e**2 - 1, 0.0], dtype=np.float32)
    signals = Signals.empty(4)
    signals = Signals(
        trending=trending,
        also_viewed=signals.also_viewed,
        bought_together=signals.bought_together,
        placed=np.array([False, False, False, True]),
        segments={"country=FR": np.array([0.0, 0.0, 0.0, math.e - 1], dtype=np.float32)},
    )
    user = UserState(
        vector=user.vector,
        history=user.history,
        recent=user.recent,
        purchased=user.purchased,
        category_seen={"hats": NOW - 2 * DAY},
        segments=("country=FR",),
    )
    features = ranking_features(user, candidates, hand_model(factors, popularity, signals), NOW)
    # Then each one has its hand-computed value
    assert features.dtype == np.float32 and features.shape == (2, len(FEATURE_NAMES))
    c, d = ({name: float(row[i]) for i, name in enumerate(FEATURE_NAMES)} for row in features)
    assert c["ann_score"] == pytest.approx(2.5) and c["ann_rank"] == 0.0
    assert math.isnan(d["ann_score"]) and math.isnan(d["ann_rank"])
    assert (c["popularity_rank"], d["popularity_rank"]) == (0.0, 1.0)
    assert (c["als_score"], d["als_score"]) == (pytest.approx(2.5), pytest.approx(1.0))
    assert c["item_popularity_log"] == pytest.approx(math.log(4.0))
    assert math.isnan(c["item_age_days"]) and d["item_age_days"] == pytest.approx(1.0)
    assert c["price_ratio"] == pytest.approx(40.0 / 20.0) and math.isnan(d["price_ratio"])
    assert (c["category_affinity"], d["category_affinity"]) == (pytest.approx(0.25), 0.0)
    assert c["user_activity_log"] == pytest.approx(math.log(5.0))
    assert c["history_count"] == 3.0
    # And the item-side signals: trending, its ratio to popularity, segment popularity, placement
    assert (c["trending_log"], d["trending_log"]) == (pytest.approx(2.0), 0.0)
    assert c["trend_ratio"] == pytest.approx(2.0 - math.log(4.0))
    assert (c["segment_popularity_log"], d["segment_popularity_log"]) == (0.0, pytest.approx(1.0))
    assert (c["item_placed"], d["item_placed"]) == (0.0, 1.0)
    # And the shopper's recency: hats touched 2 days ago, bags never; the last item (c) is a hat
    assert c["days_since_category"] == pytest.approx(2.0) and math.isnan(d["days_since_category"])
    assert (c["same_category_as_last"], d["same_category_as_last"]) == (1.0, 0.0)


def test_features_of_an_unknown_user() -> None:
    # Given nobody: no vector, no history, no purchases
    user = UserState(vector=None, history={}, recent=[], purchased=frozenset())
    candidates = Candidates(
        rows=np.array([0]), scores={"popularity": np.array([5.0])}, sources=["popularity"]
    )
    # When the features are built (the ann column is absent from the candidates)
    model = hand_model(np.ones((4, 2), np.float32), np.ones(4, np.float32))
    row = ranking_features(user, candidates, model, NOW)[0]
    values = dict(zip(FEATURE_NAMES, row.tolist(), strict=True))
    # Then user features are neutral and per-user scores missing
    assert (
        math.isnan(values["als_score"])
        and math.isnan(values["ann_score"])
        and math.isnan(values["price_ratio"])
    )
    assert (
        values["category_affinity"] == 0.0
        and values["history_count"] == 0.0
        and values["user_activity_log"] == 0.0
    )
    assert values["item_age_days"] == pytest.approx(10.0)
    assert math.isnan(values["segment_popularity_log"]) and math.isnan(values["same_category_as_last"])
