"""The report's statistics: delta-method ratios and lifts calibrated on simulated shoppers, the sample-ratio
test and the sign test."""

from __future__ import annotations

import numpy as np
import pytest

from merchandiser.experiments.statistics import (
    RatioEstimate,
    ratio_estimate,
    relative_lift,
    sample_ratio_p_value,
    sign_test,
)


def shoppers(rng: np.random.Generator, users: int, ctr: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-user pages and clicks: shoppers see 1 to many pages and differ in taste (clustered clicks)."""
    pages = 1 + rng.poisson(3.0, users)
    taste = rng.gamma(2.0, 0.5, users)  # mean 1: the population CTR stays ``ctr``
    clicks = rng.binomial(pages, np.clip(ctr * taste, 0, 1))
    return clicks, pages


def test_a_ratio_of_sums_with_its_delta_variance_matches_the_spread_over_repeated_experiments():
    # Given 300 repetitions of 2,000 shoppers at a 10% CTR
    rng = np.random.default_rng(7)
    estimates = [ratio_estimate(*shoppers(rng, 2000, 0.10)) for _ in range(300)]
    values = np.array([e.value for e in estimates])
    # Then the estimate is centred on the truth and the delta variance is the observed variance
    assert abs(values.mean() - 0.10) < 0.001
    predicted = np.mean([e.variance for e in estimates])
    assert 0.8 < values.var(ddof=1) / predicted < 1.25


def test_a_a_tests_reject_about_five_percent_of_the_time():
    # Given 400 A/A experiments of 1,000 shoppers per side
    rng = np.random.default_rng(11)
    p_values = np.array(
        [
            relative_lift(
                ratio_estimate(*shoppers(rng, 1000, 0.1)), ratio_estimate(*shoppers(rng, 1000, 0.1))
            ).p_value
            for _ in range(400)
        ]
    )
    # Then the false-positive rate at 5% is 5% (binomial 3 sigma: 2.2% to 7.8%)
    assert 0.022 < np.mean(p_values < 0.05) < 0.078


def test_the_lift_interval_covers_the_true_lift_about_95_percent_of_the_time():
    # Given 400 A/B experiments where B's CTR is 20% higher
    rng = np.random.default_rng(13)
    lifts = [
        relative_lift(ratio_estimate(*shoppers(rng, 1500, 0.12)), ratio_estimate(*shoppers(rng, 1500, 0.10)))
        for _ in range(400)
    ]
    covered = np.mean([lift.ci_low <= 0.2 <= lift.ci_high for lift in lifts])  # type: ignore[operator]
    # Then the 95% interval holds the truth about 95% of the time (3 sigma: 91.7% to 98.3%)
    assert 0.917 < covered < 0.983
    # and p < 0.05 exactly when the interval excludes 0
    assert all((lift.p_value < 0.05) == (lift.ci_low > 0 or lift.ci_high < 0) for lift in lifts)  # type: ignore[operator]


def test_undefined_ratios_and_lifts_are_none_not_errors():
    assert ratio_estimate(np.array([]), np.array([])) == RatioEstimate(None, None, 0)
    assert ratio_estimate(np.array([0.0, 0.0]), np.array([0.0, 0.0])).value is None
    assert ratio_estimate(np.array([1.0]), np.array([4.0])) == RatioEstimate(0.25, None, 1)
    some = ratio_estimate(np.array([1.0, 0.0, 2.0]), np.array([3.0, 2.0, 4.0]))
    zero = ratio_estimate(np.array([0.0, 0.0]), np.array([3.0, 2.0]))
    # a zero baseline has no relative lift; a single user has no variance
    assert relative_lift(some, zero).lift is None
    one_user = relative_lift(ratio_estimate(np.array([1.0]), np.array([2.0])), some)
    assert one_user.lift == pytest.approx(0.5 / (3 / 9) - 1) and one_user.p_value is None
    # every user with the same ratio on both sides: a lift without a test
    same = relative_lift(
        ratio_estimate(np.array([1.0, 2.0]), np.array([2.0, 4.0])),
        ratio_estimate(np.array([1.0, 1.0]), np.array([4.0, 4.0])),
    )
    assert same.lift == pytest.approx(1.0) and same.p_value is None and same.ci_low is None
    # a variant with no click at all is a -100% lift, but the delta method sees no spread around 0
    nothing = relative_lift(zero, some)
    assert nothing.lift == pytest.approx(-1.0) and nothing.p_value is None


def test_sample_ratio_mismatch_is_detected_on_a_skewed_split_and_not_on_a_fair_one():
    shares = {"holdout": 0.5, "personalized": 0.5}
    assert sample_ratio_p_value({"holdout": 1000, "personalized": 1200}, shares) < 0.001  # type: ignore[operator]
    assert sample_ratio_p_value({"holdout": 1000, "personalized": 1030}, shares) > 0.3  # type: ignore[operator]
    uneven = {"a": 0.2, "b": 0.8}
    assert sample_ratio_p_value({"a": 200, "b": 800}, uneven) == pytest.approx(1.0)
    # users in a variant that has no share, or that is not declared, mean a broken split
    assert sample_ratio_p_value({"a": 200, "b": 800, "old": 3}, uneven) == 0.0
    assert sample_ratio_p_value({"a": 200, "z": 800}, {"a": 1.0, "z": 0.0}) == 0.0
    # nothing to test
    assert sample_ratio_p_value({}, shares) is None
    assert sample_ratio_p_value({"only": 50}, {"only": 1.0}) is None


def test_the_sign_test_counts_decided_pages_only():
    assert sign_test(0, 0) is None
    assert sign_test(10, 10) == pytest.approx(1.0)
    assert sign_test(40, 70) < 0.01  # type: ignore[operator]
    assert sign_test(1, 2) == pytest.approx(1.0)
