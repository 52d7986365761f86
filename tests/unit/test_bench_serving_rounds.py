"""The serving bench's rounds: passes pool sample by sample, and the drift it prints is the lowest and
highest median of windows of consecutive pages (``python -m local_twin.bench_serving``)."""

from __future__ import annotations

import math

from local_twin.bench_serving import DRIFT_WINDOW, Pages, drift


def test_passes_pool_their_samples_and_count_statuses_together() -> None:
    first = Pages(whole=[0.010], aws=[0.002], reports=["a"], statuses={200: 1, 400: 1})
    second = Pages(whole=[0.012, 0.011], aws=[0.003, 0.001], reports=["b", "c"], statuses={200: 2})

    first.add(second)

    assert first.whole == [0.010, 0.012, 0.011]
    assert first.aws == [0.002, 0.003, 0.001]
    assert first.reports == ["a", "b", "c"]
    assert first.statuses == {200: 3, 400: 1}


def test_drift_is_the_spread_of_window_medians_in_milliseconds() -> None:
    slow, fast = [0.015] * DRIFT_WINDOW, [0.009] * DRIFT_WINDOW
    partial = [1.0] * (DRIFT_WINDOW - 1)  # too few pages for a window: left out

    moving = drift(fast + slow + fast + partial)

    assert moving["window_pages"] == DRIFT_WINDOW
    assert moving["windows"] == 3
    assert math.isclose(moving["min_median_ms"], 9.0)
    assert math.isclose(moving["max_median_ms"], 15.0)


def test_drift_of_fewer_pages_than_a_window_is_unknown() -> None:
    moving = drift([0.01] * (DRIFT_WINDOW - 1))

    assert moving["windows"] == 0
    assert math.isnan(moving["min_median_ms"]) and math.isnan(moving["max_median_ms"])
