"""The ranker learnt from what was shown: each logged page is one list, its clicked items the positives and
the items shown and not clicked the negatives, with their positions.

A click on a page says "examined and attractive"; an item low on the page was less often examined, so its
missing click is weaker evidence than one at the top. Three fits of the same LambdaRank:

- ``naive``: clicks as labels, no correction (what position bias costs is measured against it);
- ``position``: LightGBM's own unbiased LambdaMART (the Dataset's ``position``, learnt position factors
  regularized by ``lambdarank_position_bias_regularization``; Hu, Wang, Peng and Li, "Unbiased LambdaMART",
  WWW 2019);
- ``ips``: every clicked item weighted by 1 / theta of the position it was clicked at, the propensities
  of ``training.position_bias`` (Joachims et al. 2017; Wang et al. 2018 weight LambdaMART the same way).

The two debiased fits are compared on held-out pages by the IPS-weighted nDCG of their clicks (a click at
logged position k counts 1 / theta_k, Wang, Bendersky, Metzler and Najork, "Learning to Rank with Selection
Bias in Personal Search", SIGIR 2016), and the better is kept.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from training.position_bias import PropensityEstimate

logger = logging.getLogger(__name__)

MODES = ("naive", "position", "ips")
DEBIASED = ("position", "ips")
METRIC_AT = 10


@dataclass(frozen=True)
class ClickLists:
    """Rows grouped by page (``groups``: rows per page, in row order); ``labels`` 0 for shown and not
    clicked, higher for a click (and more for a cart or a purchase); ``positions`` where it was shown."""

    features: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    groups: list[int]

    def __len__(self) -> int:
        return len(self.groups)

    def pages(self, keep: np.ndarray) -> ClickLists:
        """The pages where ``keep`` (one flag per page) is set."""
        bounds = np.r_[0, np.cumsum(self.groups)]
        chosen = [np.arange(bounds[j], bounds[j + 1]) for j in np.flatnonzero(keep)]
        rows = np.concatenate(chosen).astype(np.int64) if chosen else np.empty(0, np.int64)
        return ClickLists(
            self.features[rows],
            self.labels[rows],
            self.positions[rows],
            [self.groups[j] for j in np.flatnonzero(keep)],
        )

    def with_clicks(self) -> ClickLists:
        """The pages with at least one click (a page without any teaches LambdaRank nothing)."""
        bounds = np.r_[0, np.cumsum(self.groups)]
        clicked = np.array([self.labels[a:b].any() for a, b in itertools.pairwise(bounds)])
        return self.pages(clicked) if len(self.groups) else self


def fit_click_ranker(
    lists: ClickLists,
    mode: str,
    estimate: PropensityEstimate,
    feature_names: list[str],
    params: dict[str, Any],
    rounds: int,
    position_regularization: float = 0.0,
) -> lgb.Booster:
    """LambdaRank over ``lists`` (pages with a click), debiased as ``mode`` says."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    weight = None
    position = None
    extra: dict[str, Any] = {}
    if mode == "ips":
        weight = np.where(lists.labels > 0, estimate.weight(lists.positions), 1.0)
    if mode == "position":
        position = lists.positions.astype(np.int32)
        extra["lambdarank_position_bias_regularization"] = position_regularization
    dataset = lgb.Dataset(
        lists.features,
        lists.labels,
        group=lists.groups,
        weight=weight,
        position=position,
        feature_name=feature_names,
        free_raw_data=False,
    )
    return lgb.train({**params, "objective": "lambdarank", **extra}, dataset, num_boost_round=rounds)


def ips_ndcg(
    scores: np.ndarray, lists: ClickLists, estimate: PropensityEstimate, at: int = METRIC_AT
) -> float:
    """Mean over pages with a click of the nDCG@``at`` of ``scores``' order, a click at logged position k
    gaining 1 / theta_k (the clicks debiased by where they were seen)."""
    gains = np.where(lists.labels > 0, estimate.weight(lists.positions), 0.0)
    bounds = np.r_[0, np.cumsum(lists.groups)]
    discounts = 1.0 / np.log2(np.arange(2, at + 2))
    values = []
    for a, b in itertools.pairwise(bounds):
        page_gains = gains[a:b]
        if not page_gains.any():
            continue
        order = np.argsort(-scores[a:b], kind="stable")[:at]
        ideal = np.sort(page_gains)[::-1][:at]
        values.append(float(page_gains[order] @ discounts[: len(order)] / (ideal @ discounts[: len(ideal)])))
    return float(np.mean(values)) if values else float("nan")


def choose_click_ranker(
    fit: ClickLists,
    held_out: ClickLists,
    estimate: PropensityEstimate,
    feature_names: list[str],
    params: dict[str, Any],
    rounds: int,
    position_regularization: float = 0.0,
) -> tuple[lgb.Booster, dict[str, Any]]:
    """Fits every mode on ``fit``, scores each on ``held_out`` (IPS nDCG), keeps the better debiased one."""
    fit, held_out = fit.with_clicks(), held_out.with_clicks()
    boosters = {
        mode: fit_click_ranker(fit, mode, estimate, feature_names, params, rounds, position_regularization)
        for mode in MODES
    }
    scores = {
        mode: round(ips_ndcg(np.asarray(booster.predict(held_out.features)), held_out, estimate), 6)
        for mode, booster in boosters.items()
    }
    kept = max(DEBIASED, key=lambda mode: (scores[mode], mode == "position"))
    info = {
        "kept": kept,
        f"held_out_ips_ndcg@{METRIC_AT}": scores,
        "pages_fit": len(fit),
        "pages_held_out": len(held_out),
        "rows_fit": len(fit.labels),
    }
    logger.info("click ranker: %s", info)
    return boosters[kept], info
