"""Counterfactual CTR of a candidate model on the logged impressions, before it is promoted.

The candidate re-orders the items of each logged page; under the position-based click model
(``training.position_bias``) a click at logged position k is evidence c / theta_k of the item's
attractiveness, and the candidate would have shown the item at position k', examined with theta_k'.
The estimated clicks per shown item are therefore

    CTR_new = sum_i c_i * theta_{k'_i} / theta_{k_i}  /  sum_i 1

the examination-IPS estimator of Li, Kim, Kveton, Zhang and Zhou, "Offline Evaluation of Ranking Policies
with Click Models" (KDD 2018, the PBM estimator), unbiased when the propensities are right. Its weights are
fixed by the positions, not drawn by the logging policy, so the self-normalised form (dividing by the sum of
weights instead of the count) would change the quantity estimated: the count is the normaliser here; and a
doubly robust correction with any relevance model gamma_hat reduces to the same sum (theta_k' gamma_hat +
theta_k'/theta_k (c - theta_k gamma_hat) = c theta_k'/theta_k), so it adds nothing on re-ordered pages.
Weights are capped at ``MAX_WEIGHT`` (a few deep clicks brought to the top must not decide alone).

The interval: pages are the independent units (the clicks of one page share one shopper), so the variance
is the ratio estimator's linearisation over pages, sum_j (A_j - CTR n_j)^2 / (sum_j n_j)^2, with A_j the
page's weighted clicks and n_j its items; a normal 95% interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.position_bias import PropensityEstimate

ESTIMATOR = "ips-pbm"
MAX_WEIGHT = 10.0
Z_95 = 1.959964


def counterfactual_ctr(
    shown: pd.DataFrame, new_position: np.ndarray, estimate: PropensityEstimate
) -> dict[str, Any]:
    """``shown``: one row per logged item (``page``, ``position``, ``clicked``); ``new_position``: where the
    candidate puts each row's item on its page. Returns ``evaluation.json``'s ``counterfactual`` block."""
    if shown.empty:
        return {
            "estimator": ESTIMATOR,
            "impressions": 0,
            "items_shown": 0,
            "logged_ctr": None,
            "estimated_ctr": None,
            "ci_low": None,
            "ci_high": None,
        }
    theta = np.asarray(estimate.propensities, dtype=np.float64)
    last = len(theta) - 1
    logged = shown["position"].to_numpy(np.int64)
    weights = np.minimum(
        theta[np.minimum(np.asarray(new_position, dtype=np.int64), last)] / theta[np.minimum(logged, last)],
        MAX_WEIGHT,
    )
    clicks = shown["clicked"].to_numpy(np.float64)
    pages = pd.factorize(shown["page"])[0]
    weighted = np.bincount(pages, weights=weights * clicks)
    sizes = np.bincount(pages).astype(np.float64)
    total = sizes.sum()
    estimated = float(weighted.sum() / total)
    spread = float(np.sqrt(np.sum((weighted - estimated * sizes) ** 2)) / total)
    return {
        "estimator": ESTIMATOR,
        "impressions": len(sizes),
        "items_shown": int(total),
        "logged_ctr": round(float(clicks.mean()), 6),
        "estimated_ctr": round(estimated, 6),
        "ci_low": round(max(0.0, estimated - Z_95 * spread), 6),
        "ci_high": round(estimated + Z_95 * spread, 6),
        "propensities": "position_propensities",
    }


def positions_by_score(shown: pd.DataFrame, scores: np.ndarray) -> np.ndarray:
    """The position each row's item takes when its page is sorted by ``scores`` (best first; ties keep the
    logged order)."""
    frame = pd.DataFrame({"page": shown["page"].to_numpy(), "position": shown["position"].to_numpy()})
    frame["score"] = -np.asarray(scores, dtype=np.float64)
    ranked = frame.sort_values(["page", "score", "position"], kind="stable")
    new = np.empty(len(frame), dtype=np.int64)
    new[ranked.index.to_numpy()] = ranked.groupby("page", sort=False).cumcount().to_numpy()
    return new
