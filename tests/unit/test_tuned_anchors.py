"""Tuned anchors: ties broken by meaning, windows read as promised, searches that are reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merchandiser.catalog import Catalog
from training.anchors import (
    ANCHOR_NAMES,
    AnchorSettings,
    Recommender,
    anchor_settings,
    tie_ranks,
    tuned_anchors,
)
from training.anchors.families import family
from training.anchors.tuning import with_names
from training.anchors.window import window_of
from training.channels import read_channels
from training.datasets.synthetic_shop import generate
from training.fit import build_catalog, epoch_seconds
from training.split import temporal_split

START = pd.Timestamp("2026-05-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
NANOS = "datetime64[ns, UTC]"


def catalog_of(item_ids: list[str], created_days_ago: list[float] | None = None) -> Catalog:
    created = created_days_ago or [100.0] * len(item_ids)
    return build_catalog(
        pd.DataFrame(
            {
                "item_id": item_ids,
                "title": item_ids,
                "category": ["c"] * len(item_ids),
                "brand": ["b"] * len(item_ids),
                "price": [1.0] * len(item_ids),
                "created_at": pd.Series([START - pd.Timedelta(days=days) for days in created]).astype(NANOS),
                "in_stock": [True] * len(item_ids),
            }
        )
    )


def events_of(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(user, item, event type, hours after START) per event."""
    frame = pd.DataFrame(
        [(user, item, kind, START + hours * HOUR) for user, item, kind, hours in rows],
        columns=["user_id", "item_id", "event_type", "timestamp"],
    )
    return frame.astype({"timestamp": NANOS})  # as the channels type it


def test_exact_ties_go_to_recent_popularity_then_recency_never_to_the_item_id() -> None:
    # Given five items whose ids run against the meaningful order: i4 scores best; i0..i3 tie on score;
    # i1 and i2 also tie on recent popularity, i2 was touched later; i0 and i3 were never touched
    catalog = catalog_of(["i0", "i1", "i2", "i3", "i4"], created_days_ago=[1.0, 50.0, 50.0, 9.0, 50.0])
    window = window_of(events_of([]), catalog, epoch_seconds(START))
    popularity = np.array([0.0, 9.0, 9.0, 0.0, 0.0])
    last_seen = np.array([-np.inf, 10.0, 30.0, -np.inf, 5.0])
    ranks = tie_ranks(popularity, last_seen, window.created_at)
    recommender = Recommender(window, ranks, static=np.array([1.0, 1.0, 1.0, 1.0, 2.0]))
    # When a shopper is recommended five items
    order = [catalog.item_ids[row] for row in recommender.recommend(["anyone"], 5)["anyone"]]
    # Then the best score leads, then popularity, then the later touch, then the newer item (i0 before i3)
    assert order == ["i4", "i2", "i1", "i0", "i3"]


def test_the_tie_order_follows_the_items_not_their_place_in_the_catalogue() -> None:
    # Given the same tie keys laid out in two catalogue orders
    popularity = np.array([3.0, 3.0, 3.0, 1.0])
    last_seen = np.array([7.0, 9.0, 8.0, 9.0])
    created = np.zeros(4)
    shuffled = np.array([2, 0, 3, 1])
    # When the tie ranks are computed on each / Then an item keeps its rank wherever it sits
    ranks = tie_ranks(popularity, last_seen, created)
    moved = tie_ranks(popularity[shuffled], last_seen[shuffled], created[shuffled])
    assert ranks.tolist() == [2, 0, 1, 3]
    assert moved.tolist() == ranks[shuffled].tolist()


def test_a_personal_anchor_orders_a_new_shopper_and_its_own_ties_by_recent_popularity() -> None:
    # Given a shopper "a" who bought x; y and z were each touched by two shoppers, one of whom also touched x
    # (equal cosine to x), z more often and later (more popular lately); w by one shopper without x.
    # The catalogue order (w, x, y, z) is not the popularity order (z, x, y, w)
    events = events_of(
        [
            ("a", "x", "purchase", 0.0),
            ("b", "x", "view", 1.0), ("b", "y", "view", 2.0),
            ("c", "x", "view", 3.0), ("c", "z", "view", 4.0),
            ("d", "y", "view", 5.0), ("e", "z", "view", 6.0), ("e", "z", "view", 6.5),
            ("f", "w", "view", 7.0),
        ]
    )  # fmt: skip
    catalog = catalog_of(["w", "x", "y", "z"])
    window = window_of(events, catalog, epoch_seconds(START + 10 * HOUR))
    popularity = window.popularity(24.0, "count")
    ranks = tie_ranks(popularity, window.last_seen(), window.created_at)
    params = {"neighbours": 10, "shrink": 0.0, "matrix": "binary"}
    recommender = family("item_knn").fit(window, params, ranks)
    # When "a" and a shopper never seen are recommended
    lists = recommender.recommend(["a", "new"], 4)
    names = {user: [str(catalog.item_ids[row]) for row in rows] for user, rows in lists.items()}
    # Then "a" gets z before y (equal similarity, z more popular), then w (score 0), never the bought x;
    # the new shopper gets recent popularity: z, x, y, w
    assert names["a"] == ["z", "y", "w"]
    assert names["new"] == ["z", "x", "y", "w"]


def test_the_window_builds_its_matrices_and_decayed_popularity() -> None:
    # Given a view and a purchase of one item by one shopper, 24 hours apart, and another item's view
    events = events_of([("a", "x", "view", 0.0), ("a", "x", "purchase", 24.0), ("b", "y", "view", 47.0)])
    window = window_of(events, catalog_of(["x", "y"]), epoch_seconds(START + 48 * HOUR))
    # Then the cells sum the event weights (1 + 8), binary or log(1 + 9)
    assert window.matrix("binary").toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]
    np.testing.assert_allclose(window.matrix("log_weight").toarray(), [[np.log(10.0), 0], [0, np.log(2.0)]])
    assert window.purchased().toarray().tolist() == [[True, False], [False, False]]
    # and popularity halves per half-life: x = 1 * 0.5^2 + 8 * 0.5 at a 24-hour half-life
    np.testing.assert_allclose(window.popularity(24.0, "event_weight"), [4.25, 0.5 ** (1 / 24)])
    np.testing.assert_allclose(window.popularity(24.0, "count", window_hours=30.0), [0.5, 0.5 ** (1 / 24)])
    with pytest.raises(ValueError, match="matrix kind"):
        window.matrix("tfidf")
    with pytest.raises(ValueError, match="weighting"):
        window.popularity(1.0, "revenue")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Catalog, float, float]:
    out = tmp_path_factory.mktemp("anchor_shop")
    generate(out, n_users=250, n_items=80, n_days=40, seed=5)
    channels = read_channels(Path(out), Path(out))
    split = temporal_split(channels.interactions, 0.1)
    return (
        channels.interactions,
        build_catalog(channels.items),
        epoch_seconds(split.validation_start),
        epoch_seconds(split.test_start),
    )


def test_every_anchor_is_tuned_on_validation_and_never_below_its_default(shop: tuple) -> None:
    interactions, catalog, validation_start, test_start = shop
    before_test = interactions[epoch_seconds(interactions["timestamp"]) < test_start]
    # When the anchors are tuned with 6 trials each
    results = tuned_anchors(before_test, catalog, validation_start, test_start, AnchorSettings(trials=6))
    # Then each has its settings, searched within its space, a validation score no worse than its default's
    assert tuple(results) == ANCHOR_NAMES
    for name, result in results.items():
        summary = result.summary()
        assert summary["trials"] == 6 and summary["stopped_by"] == "trials", name
        assert result.validation_ndcg is not None and result.default_validation_ndcg is not None
        assert 0 < result.default_validation_ndcg <= result.validation_ndcg, name
        assert result.recommender is not None and result.recommender.window.now == test_start
    assert 1.0 <= results["pop_recent"].params["half_life_hours"] <= 8 * 168
    assert {"weight", "half_life_hours", "lambda_scale", "matrix"} == set(results["ease_pop"].params)
    assert results["ease_pop"].params["lambda_scale"] == results["ease"].params["lambda_scale"]


def test_tuning_is_reproducible_and_blind_to_the_test_window(shop: tuple) -> None:
    interactions, catalog, validation_start, test_start = shop
    settings = with_names(AnchorSettings(trials=5), ("pop_recent", "item_knn"))
    before_test = interactions[epoch_seconds(interactions["timestamp"]) < test_start]
    # When the search runs twice, once given the test window's events too
    first = tuned_anchors(before_test, catalog, validation_start, test_start, settings)
    second = tuned_anchors(interactions, catalog, validation_start, test_start, settings)
    # Then the settings, the validation scores and the refitted lists are the same
    users = sorted(set(interactions["user_id"]))[:50]
    for name in ("pop_recent", "item_knn"):
        assert first[name].params == second[name].params
        assert first[name].validation_ndcg == second[name].validation_ndcg
        left, right = first[name].recommender, second[name].recommender
        assert left is not None and right is not None
        assert left.recommend(users, 20) == right.recommend(users, 20)


def test_ease_is_skipped_with_its_reason_above_the_item_limit(shop: tuple) -> None:
    interactions, catalog, validation_start, test_start = shop
    settings = with_names(AnchorSettings(trials=2, ease_max_items=10), ("ease", "ease_pop"))
    results = tuned_anchors(interactions, catalog, validation_start, test_start, settings)
    for name in ("ease", "ease_pop"):
        assert results[name].recommender is None
        assert "exceed ease_max_items=10" in results[name].summary()["skipped"]


def test_item_item_anchors_are_skipped_with_their_reason_when_x_x_may_be_too_large(shop: tuple) -> None:
    interactions, catalog, validation_start, test_start = shop
    settings = with_names(
        AnchorSettings(trials=2, neighbour_max_pairs=100), ("item_knn", "rp3beta", "trending")
    )
    results = tuned_anchors(interactions, catalog, validation_start, test_start, settings)
    for name in ("item_knn", "rp3beta"):
        assert results[name].recommender is None
        assert "above neighbour_max_pairs=100" in results[name].summary()["skipped"]
    assert results["trending"].recommender is not None


def test_unknown_anchors_are_refused_and_the_time_guard_grows_with_the_data() -> None:
    with pytest.raises(ValueError, match="unknown anchors"):
        with_names(AnchorSettings(), ("pop_recent", "svd"))
    small = anchor_settings(10_000, 20, 0.0, 6000, 5000, 7)
    large = anchor_settings(1_000_000, 20, 0.0, 6000, 5000, 7)
    # 30 s + 60 s per 100,000 events for the six anchors, at most 900 s
    assert small.seconds == pytest.approx(36.0 / 6) and large.seconds == pytest.approx(630.0 / 6)
    assert anchor_settings(10**9, 20, 0.0, 6000, 5000, 7).seconds == 150.0
    assert anchor_settings(10**9, 20, 42.0, 6000, 5000, 7).seconds == 42.0
    # and every other setting is the one given
    given = anchor_settings(10, trials=3, seconds=1.0, ease_max_items=9, max_users=11, seed=13, threads=2)
    assert given == AnchorSettings(trials=3, seconds=1.0, ease_max_items=9, max_users=11, seed=13, threads=2)


def test_the_time_guard_counts_the_process_cpu_seconds_not_the_wall_clock(
    shop: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    interactions, catalog, validation_start, test_start = shop
    settings = with_names(AnchorSettings(trials=4, seconds=30.0), ("pop_recent",))
    # Given a machine so busy that an hour of wall clock passes between two readings (a CPU clock as it is)
    from training.anchors import tuning

    wall = iter(range(0, 10**9, 3600))
    monkeypatch.setattr(tuning.time, "perf_counter", lambda: float(next(wall)))
    # When the anchor is searched with 30 s of guard
    result = tuned_anchors(interactions, catalog, validation_start, test_start, settings)["pop_recent"]
    # Then it runs all its trials, as on a quiet machine
    assert (result.trials, result.stopped_by) == (4, "trials")
    # And with the guard spent after the first trial, the search stops there, saying why
    cpu = iter([0.0] + [1000.0] * 100)
    monkeypatch.setattr(tuning.time, "process_time", lambda: next(cpu))
    result = tuned_anchors(interactions, catalog, validation_start, test_start, settings)["pop_recent"]
    assert (result.trials, result.stopped_by) == (1, "time")
