"""Examination propensity of each page position, estimated from the logged impressions.

The click model is the position-based model: P(click | shopper q, item d, position k) = theta_k * gamma_qd,
theta_k the probability that position k is looked at, gamma_qd how attractive d is to q. Position and
relevance are confounded on a production page (the best items are shown first), so theta is only
identifiable where the same item reached the same shopper at different positions. Those interventions
come from serving's own randomization (one adjacent swap on a small share of pages,
``merchandiser.reranking.randomize``), from the shopper's session moving items between pages, and from
different variants and model versions ranking the same shopper's items differently.

Estimator: intervention harvesting with the AllPairs maximum likelihood of Agarwal, Zaitsev, Wang, Li,
Najork and Joachims, "Estimating Position Bias without Intrusive Interventions" (WSDM 2019), section 4:
for each pair of positions (k, k'), S_kk' is the set of (shopper, item) shown both at k and at k'; with
every such pair weighted once, c_k^kk' = sum over S_kk' of the pair's click rate at k has expectation
theta_k * r_kk' * |S_kk'|, where r_kk' (the mean attractiveness of S_kk') is the same for k and k'.
theta and r maximize sum over k != k' of c log(theta_k r_kk') + (|S_kk'| - c) log(1 - theta_k r_kk').

With the items' features (the training job has each shown item's ranking features), the estimator is the
regression EM of Wang, Golbandi, Bendersky, Metzler and Najork, "Position Bias Estimation for Unbiased
Learning to Rank in Personal Search" (WSDM 2018): the same click model, the attractiveness a function
gamma(x) of the features fitted by gradient boosting, theta and gamma by expectation-maximisation of the
clicks' likelihood. Each click is a Bernoulli(theta_k gamma(x)) draw given that the item was shown, so a
page that depends on earlier clicks (serving leaves a clicked item out of the shopper's next pages) does not
bias it, while harvesting, which keeps only the items shown twice, would see only the unclicked first
showings. What identifies theta is the variation of positions at equal features: the swaps, the session
moving items between pages, variants and model versions.

As a check on the swap pages alone, ``swap_ratios`` gives the ratio estimator of Joachims, Swaminathan and
Schnabel, "Unbiased Learning-to-Rank with Biased Feedback" (WSDM 2017), section 5: the items the ranker
put at k are shown at k + 1 on a random share of pages, so the click rate of those items at k + 1 over
their click rate at k estimates theta_{k+1} / theta_k.

Positions without harvested evidence (past the end of the logged pages) get a power law
theta_k = (1 + k)^-eta fitted to the estimated positions, so the list always has ``MIN_POSITIONS`` entries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize

logger = logging.getLogger(__name__)

MIN_POSITIONS = 20  # evaluation.json's position_propensities has at least this many entries
MAX_POSITIONS = 50  # positions past this are not estimated (pages that long are rare)
MIN_PAIR_CLICKS = 1.0  # a position pair whose harvested items never got a click carries no evidence
FLOOR = 1e-3  # the smallest propensity reported (an IPS weight is at most 1 / FLOOR)
EM_ITERATIONS = 30
EM_ROUNDS = 30  # trees of each M-step's attractiveness model
EM_MIN_SHOWN = 50  # items shown at a position before its propensity is estimated
EM_PARAMS = {
    "objective": "cross_entropy",  # soft labels: the E-step's P(attractive)
    "num_leaves": 7,
    "learning_rate": 0.1,
    "min_data_in_leaf": 50,
    "num_threads": 1,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}


@dataclass(frozen=True)
class PropensityEstimate:
    """theta relative to position 0 (``propensities[0] == 1``); ``estimated`` positions had evidence."""

    propensities: list[float]
    estimated: int  # positions 0 .. estimated - 1 come from the likelihood, the rest from the power law
    pairs: int  # (shopper, item, k, k') interventions harvested
    pages: int
    swap_ratios: dict[int, dict[str, float]] = field(default_factory=dict)
    method: str = "intervention harvesting, AllPairs maximum likelihood (Agarwal et al. 2019)"

    def weight(self, positions: np.ndarray) -> np.ndarray:
        """1 / theta at each position (the last propensity past the end of the list)."""
        theta = np.asarray(self.propensities, dtype=np.float64)
        return np.asarray(1.0 / theta[np.minimum(positions, len(theta) - 1)])

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "estimated_positions": self.estimated,
            "harvested_pairs": self.pairs,
            "pages": self.pages,
            "swap_ratios": {str(k): v for k, v in self.swap_ratios.items()},
        }


def flat_estimate(pages: int = 0) -> PropensityEstimate:
    """No evidence: every position looked at alike (no correction)."""
    return PropensityEstimate([1.0] * MIN_POSITIONS, 0, 0, pages, method="none: no harvested interventions")


def harvested_clicks(shown: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per position pair (k, k'): ``counts[k, k']`` = |S_kk'| and ``clicks[k, k']`` = c_k^kk'.

    ``shown``: one row per shown item with ``query`` (shopper and surface), ``item_id``, ``position``,
    ``clicked``."""
    frame = shown[shown["position"] < MAX_POSITIONS]
    rates = (
        frame.groupby(["query", "item_id", "position"], sort=False)["clicked"]
        .mean()
        .rename("rate")
        .reset_index()
    )
    n = int(frame["position"].max()) + 1 if len(frame) else 0
    counts = np.zeros((n, n))
    clicks = np.zeros((n, n))
    # every (shopper, item) seen at two or more positions: all its ordered pairs of positions
    rates["pair"] = rates.groupby(["query", "item_id"], sort=False).ngroup()
    multi = rates[rates.groupby("pair")["position"].transform("size") > 1]
    joined = multi.merge(multi, on="pair", suffixes=("", "_other"))
    joined = joined[joined["position"] != joined["position_other"]]
    k = joined["position"].to_numpy(np.int64)
    k_other = joined["position_other"].to_numpy(np.int64)
    np.add.at(counts, (k, k_other), 1.0)
    np.add.at(clicks, (k, k_other), joined["rate"].to_numpy(np.float64))
    return counts, clicks


def allpairs_propensities(counts: np.ndarray, clicks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """theta (relative to position 0) by the AllPairs likelihood, and which positions it reached.

    theta_k = sigmoid(a_k), r_kk' = sigmoid(b_kk') with b symmetric, so every probability stays in (0, 1)."""
    n = counts.shape[0]
    usable = (counts > 0) & (clicks + clicks.T >= MIN_PAIR_CLICKS)
    reached = _connected_to_first(usable)
    ks, ks_other = np.nonzero(usable & reached[:, None] & reached[None, :])
    if not reached.any() or len(ks) == 0:
        return np.ones(n), reached
    low, high = np.minimum(ks, ks_other), np.maximum(ks, ks_other)
    pair_ids, pair_index = np.unique(low * n + high, return_inverse=True)
    c, total = clicks[ks, ks_other], counts[ks, ks_other]

    def negative_log_likelihood(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params[:n], params[n:]
        theta, r = _sigmoid(a[ks]), _sigmoid(b[pair_index])
        p = np.clip(theta * r, 1e-12, 1 - 1e-12)
        value = -float(np.sum(c * np.log(p) + (total - c) * np.log1p(-p)))
        slope = (c - total * p) / (1 - p)  # d loglik / d log p, times p / p
        grad = np.zeros_like(params)
        np.add.at(grad, ks, -slope * (1 - theta))
        np.add.at(grad, n + pair_index, -slope * (1 - r))
        return value, grad

    start = np.concatenate([np.full(n, 1.0), np.full(len(pair_ids), -1.0)])
    result = minimize(negative_log_likelihood, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    theta = _sigmoid(result.x[:n])
    return theta / theta[0], reached


def regression_em_propensities(
    features: np.ndarray, positions: np.ndarray, clicks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """theta (relative to position 0) by the regression EM, and which positions had enough shown items.

    E-step, for an item at position k not clicked: P(examined) = theta_k (1 - gamma) / (1 - theta_k gamma),
    P(attractive) = (1 - theta_k) gamma / (1 - theta_k gamma); a click was both. M-step: theta_k is the mean
    P(examined) at k; gamma(x) a LightGBM fit of P(attractive) under the cross-entropy loss (soft labels)."""
    keep = positions < MAX_POSITIONS
    features, positions, clicks = features[keep], positions[keep], clicks[keep]
    n = int(positions.max()) + 1 if len(positions) else 0
    shown_at = np.bincount(positions, minlength=n)
    reached = shown_at >= EM_MIN_SHOWN
    if not reached.any() or n == 0:
        return np.ones(n), reached
    theta = np.full(n, 0.5)
    gamma = np.full(len(clicks), min(0.5, 2 * float(clicks.mean())))
    for _ in range(EM_ITERATIONS):
        examined_theta = theta[positions]
        unclicked = 1.0 - examined_theta * gamma
        examined = np.where(clicks > 0, 1.0, examined_theta * (1 - gamma) / unclicked)
        attractive = np.where(clicks > 0, 1.0, (1 - examined_theta) * gamma / unclicked)
        theta = np.clip(
            np.bincount(positions, weights=examined, minlength=n) / np.maximum(shown_at, 1), FLOOR, 1
        )
        booster = lgb.train(EM_PARAMS, lgb.Dataset(features, attractive), num_boost_round=EM_ROUNDS)
        gamma = np.clip(np.asarray(booster.predict(features)), 1e-4, 1 - 1e-4)
    return theta / theta[0], reached


def swap_ratios(shown: pd.DataFrame) -> dict[int, dict[str, float]]:
    """theta_{k+1} / theta_k from the randomized adjacent swaps (Joachims et al. 2017), where there were
    swaps: the items ranked at k, their click rate shown at k + 1 (swapped pages) over shown at k (the
    other pages). ``shown`` needs ``ranked_position`` (the position before the swap) and ``swapped``."""
    if "ranked_position" not in shown.columns or "swapped" not in shown.columns:
        return {}
    ratios: dict[int, dict[str, float]] = {}
    moved = shown[shown["swapped"] & (shown["position"] == shown["ranked_position"] + 1)]
    for k, group in moved.groupby("ranked_position"):
        kept = shown[(shown["ranked_position"] == k) & ~shown["swapped"]]
        base = float(kept["clicked"].mean()) if len(kept) else 0.0
        if base > 0:
            ratios[int(k)] = {
                "ratio": round(float(group["clicked"].mean()) / base, 4),
                "swapped_items": float(len(group)),
            }
    return ratios


def estimate_propensities(
    shown: pd.DataFrame, features: np.ndarray | None = None, min_positions: int = MIN_POSITIONS
) -> PropensityEstimate:
    """The examination propensities from one row per shown item (``harvested_clicks``' columns, and
    ``page`` to count pages; ``ranked_position`` and ``swapped`` add the swap ratios). With ``features``
    (one row per shown item) the regression EM, else intervention harvesting."""
    pages = int(shown["page"].nunique()) if "page" in shown.columns else 0
    if shown.empty or not shown["clicked"].any():
        return flat_estimate(pages)
    counts, clicks = harvested_clicks(shown)
    pairs = int(counts.sum() // 2)
    if features is not None:
        theta, reached = regression_em_propensities(
            features, shown["position"].to_numpy(np.int64), shown["clicked"].to_numpy(np.float64)
        )
        method = "regression EM (Wang et al. 2018)"
    else:
        theta, reached = allpairs_propensities(counts, clicks)
        method = PropensityEstimate.method
    estimated = int(np.argmin(reached)) if not reached.all() else len(reached)
    if estimated <= 1:
        return flat_estimate(pages)
    theta = np.clip(theta[:estimated], FLOOR, None)
    length = max(min_positions, estimated)
    filled = np.concatenate([theta, _power_law_tail(theta, length)])
    estimate = PropensityEstimate(
        propensities=[round(float(value), 6) for value in filled],
        estimated=estimated,
        pairs=pairs,
        pages=pages,
        swap_ratios=swap_ratios(shown),
        method=method,
    )
    logger.info("position propensities %s (%d estimated)", estimate.propensities[:10], estimated)
    return estimate


def _power_law_tail(theta: np.ndarray, length: int) -> np.ndarray:
    """theta_k = (1 + k)^-eta for k = len(theta) .. length - 1, eta by least squares on log theta (k >= 1),
    never above the last estimated value (looking further down a page is never more likely)."""
    k = np.arange(1, len(theta))
    eta = max(0.0, float(-np.sum(np.log1p(k) * np.log(theta[1:])) / np.sum(np.log1p(k) ** 2)))
    tail = (1.0 + np.arange(len(theta), length)) ** -eta
    return np.clip(np.minimum(tail, theta[-1]), FLOOR, 1.0)


def _connected_to_first(usable: np.ndarray) -> np.ndarray:
    """The positions linked to position 0 through pairs with evidence, in a run from 0 with no gap (a
    position reachable only past a gap is not compared with the top of the page closely enough)."""
    n = usable.shape[0]
    linked = usable | usable.T
    reached = np.zeros(n, dtype=bool)
    if n == 0:
        return reached
    reached[0] = True
    frontier = [0]
    while frontier:
        k = frontier.pop()
        for other in np.flatnonzero(linked[k] & ~reached).tolist():
            reached[other] = True
            frontier.append(other)
    first_gap = int(np.argmin(reached)) if not reached.all() else n
    reached[first_gap:] = False
    return reached


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))
