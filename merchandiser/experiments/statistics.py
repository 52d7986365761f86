"""The report's statistics, on per-user sums (the user is the unit of randomisation).

A page-level metric such as CTR is a ratio of two per-user sums, clicks over impressions: pages of one
shopper are correlated, so treating pages as independent would understate the variance. The delta
method gives the variance of the ratio of means across users (Deng, Knoblich and Lu, "Applying the
Delta Method in Metric Analytics", KDD 2018), and again of the relative lift between two independent
groups. The p-value and the confidence interval come from the same normal approximation, so p < alpha
exactly when the interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioEstimate:
    """sum(numerator) / sum(denominator) over users, and its delta-method variance."""

    value: float | None
    variance: float | None
    users: int


@dataclass(frozen=True)
class Lift:
    lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> RatioEstimate:
    """Var(mean x / mean y) ~ (s_xx - 2 R s_xy + R^2 s_yy) / (n mean_y^2), with sample (co)variances."""
    x = np.asarray(numerator, dtype=np.float64)
    y = np.asarray(denominator, dtype=np.float64)
    n = len(x)
    if n == 0 or y.sum() <= 0:
        return RatioEstimate(None, None, n)
    mean_x, mean_y = x.mean(), y.mean()
    ratio = float(mean_x / mean_y)
    if n < 2:
        return RatioEstimate(ratio, None, n)
    covariance = np.cov(x, y, ddof=1)
    s_xx, s_xy, s_yy = covariance[0, 0], covariance[0, 1], covariance[1, 1]
    variance = (s_xx - 2 * ratio * s_xy + ratio**2 * s_yy) / (n * mean_y**2)
    return RatioEstimate(ratio, max(float(variance), 0.0), n)


def relative_lift(variant: RatioEstimate, baseline: RatioEstimate, confidence: float = 0.95) -> Lift:
    """variant / baseline - 1, with a delta-method interval and a two-sided p-value against no lift.

    Var(V/B) ~ Var(V)/B^2 + V^2 Var(B)/B^4 for independent groups (different users).
    """
    from scipy import stats  # imported when a report runs, not on serving's cold start

    if variant.value is None or baseline.value is None or baseline.value == 0:
        return Lift(None, None, None, None)
    v, b = variant.value, baseline.value
    lift = v / b - 1.0
    if variant.variance is None or baseline.variance is None:
        return Lift(lift, None, None, None)
    standard_error = math.sqrt(variant.variance / b**2 + v**2 * baseline.variance / b**4)
    if standard_error == 0.0:  # every user had the same ratio on both sides: nothing to test
        return Lift(lift, None, None, None)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p_value = float(2 * stats.norm.sf(abs(lift) / standard_error))
    return Lift(lift, lift - z * standard_error, lift + z * standard_error, p_value)


def sample_ratio_p_value(users: Mapping[str, int], shares: Mapping[str, float]) -> float | None:
    """Chi-square goodness of fit of users per declared variant against the declared shares.

    Users in a variant declared with share 0 (or not declared) can only come from a broken split:
    p = 0. None when there is nothing to test (no users, or a single variant).
    """
    from scipy import stats  # imported when a report runs, not on serving's cold start

    stray = sum(count for name, count in users.items() if shares.get(name, 0.0) <= 0.0)
    live = {name: share for name, share in shares.items() if share > 0.0}
    observed = np.array([users.get(name, 0) for name in live], dtype=np.float64)
    total = observed.sum() + stray
    if total == 0:
        return None
    if stray:
        return 0.0
    if len(live) < 2:
        return None
    expected = np.array(list(live.values())) / sum(live.values()) * total
    return float(stats.chisquare(observed, expected).pvalue)


def sign_test(wins_a: int, wins_b: int) -> float | None:
    """Two-sided binomial test of B's wins among decided pages against a fair coin (ties left out)."""
    from scipy import stats  # imported when a report runs, not on serving's cold start

    decided = wins_a + wins_b
    if decided == 0:
        return None
    return float(stats.binomtest(wins_b, decided, 0.5).pvalue)
