"""The simple lists: recency-weighted popularity and trending over a window, measured back from the latest
event, and their search on a validation objective."""

from __future__ import annotations

import numpy as np
import pytest

from training.events import EventArrays, ListSettings
from training.fit import Hyperparameters
from training.simple_lists import ListObjective, current_settings, tune_simple_lists, with_settings

HOUR = 3600.0
NOW = 1_000_000.0


def events(rows: list[int], hours_ago: list[float], weights: list[float] | None = None) -> EventArrays:
    return EventArrays(
        rows=np.array(rows, dtype=np.int64),
        weights=np.array(weights or [1.0] * len(rows)),
        seconds=NOW - np.array(hours_ago) * HOUR,
        n_items=4,
    )


def test_a_short_window_after_a_quiet_weekend_still_holds_the_last_trading_hours() -> None:
    # Given item 1 sold 50 and 51 hours before the cut, item 0 three days earlier, nothing since
    arrays = events([0, 1, 1], [120.0, 50.0, 51.0])
    # When a six-hour trending window with a one-hour half-life is computed at the cut
    scores = arrays.scores(NOW, ListSettings(1.0, "count", 6.0))
    # Then the window ends at the latest event, not at the cut: item 1 trends, nothing underflows to zero
    assert scores[1] == pytest.approx(1.0 + 0.5) and scores[0] == 0.0
    # And a long half-life without a window keeps both, the recent one first
    both = arrays.scores(NOW, ListSettings(24.0 * 30))
    assert both[1] > both[0] > 0


def test_weighting_counts_events_by_type_or_once() -> None:
    arrays = events([0, 1], [1.0, 1.0], weights=[8.0, 1.0])
    weighted = arrays.scores(NOW, ListSettings(1000.0, "event_weight"))
    counted = arrays.scores(NOW, ListSettings(1000.0, "count"))
    assert weighted[0] > weighted[1] and counted[0] == pytest.approx(counted[1])
    with pytest.raises(ValueError):
        ListSettings(10.0, "loudness")


def test_the_search_finds_the_half_life_a_fast_shop_needs_and_the_settings_reach_the_hyperparameters() -> (
    None
):
    # Given item 0 bought a lot a month ago and item 1 a little in the last hours: the shoppers of the
    # validation window want item 1
    arrays = events([0] * 20 + [1] * 3, [24.0 * 30] * 20 + [2.0, 3.0, 4.0])
    users = [f"u{n}" for n in range(5)]
    objective = ListObjective(users, {user: {1} for user in users}, {}, tie=np.arange(4, dtype=np.int64))
    hp = Hyperparameters(recent_half_life_hours=24.0 * 30)
    # When the lists are searched, the current (30-day) settings first
    results = tune_simple_lists(arrays, NOW, objective, hp, trials=8, out_of_time=lambda: False)
    recent = results["pop_recent"]
    # Then the default ranked item 0 first, the chosen settings rank item 1 first
    assert recent.default_validation_ndcg < 1.0 and recent.validation_ndcg == pytest.approx(1.0)
    assert recent.settings.half_life_hours < 24.0 * 30 and recent.trials == 8
    # And the chosen settings are what the hyperparameters then carry into the model
    chosen = with_settings(hp, "pop_recent", recent.settings)
    assert current_settings("pop_recent", chosen) == recent.settings
    trending = with_settings(hp, "trending", results["trending"].settings)
    assert current_settings("trending", trending).window_hours == pytest.approx(
        results["trending"].settings.window_hours
    )
