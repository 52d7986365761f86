"""The ranker: LambdaRank examples from (shopper, candidate) features, the early-stopped fit, and the whole
step of the job that learns it from a label window after its retrieval fit."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from merchandiser.catalog import ItemModel
from merchandiser.ranking import FEATURE_NAMES, ranking_features
from merchandiser.retrieval import candidates as retrieve
from merchandiser.shopper import UserState, state_from_rows
from training.click_ranker import ClickLists
from training.fit import Hyperparameters, UserHistory, relevant_items, sample_users
from training.popularity_bias import positive_weights
from training.position_bias import PropensityEstimate, flat_estimate

logger = logging.getLogger(__name__)

MIN_RANKER_GROUPS = 10  # per part (fit / early stopping); fewer and the ranker is skipped


def ranker_examples(
    model: ItemModel,
    histories: dict[str, UserHistory],
    relevant: dict[str, set[int]],
    users: list[str],
    now: float,
    k: int,
    segments: dict[str, tuple[str, ...]] | None = None,
    states: Mapping[str, UserState] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features, 0/1 labels and group sizes for users with at least one positive candidate; users new at
    ``now`` are served as serving serves them (their segment's candidates), so the ranker learns them too.
    ``states``: the users' states when already built (the tuning reuses them over its trials)."""
    features, labels, groups = [], [], []
    for user_id in users:
        state = states[user_id] if states is not None else user_state_at(model, histories, user_id, segments)
        candidates = retrieve(model, state, k)
        label = np.isin(candidates.rows, np.fromiter(relevant[user_id], dtype=np.int64)).astype(np.float32)
        if not label.any():
            continue
        features.append(ranking_features(state, candidates, model, now))
        labels.append(label)
        groups.append(len(label))
    if not groups:
        return np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0, np.float32), []
    return np.vstack(features), np.concatenate(labels), groups


def user_state_at(
    model: ItemModel,
    histories: Mapping[str, UserHistory],
    user_id: str,
    segments: Mapping[str, tuple[str, ...]] | None = None,
) -> UserState:
    """The user's state from their history, or a new user's (their segments only)."""
    history = histories.get(user_id)
    if history is None:
        return state_from_rows(model, {}, [], frozenset(), None, (segments or {}).get(user_id, ()))
    return history.state(model)


def split_holdout(users: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """``users`` split (seeded) into the part that fits the trees and the part that stops the boosting."""
    order = np.random.default_rng(seed).permutation(len(users))
    n_holdout = round(share * len(users))
    holdout = [users[position] for position in sorted(order[:n_holdout])]
    fitting = [users[position] for position in sorted(order[n_holdout:])]
    return fitting, holdout


def train_ranker(
    model: ItemModel,
    histories: dict[str, UserHistory],
    label_events: pd.DataFrame,
    now: float,
    hp: Hyperparameters,
    segments: dict[str, tuple[str, ...]] | None = None,
    pages: ClickLists | None = None,
    estimate: PropensityEstimate | None = None,
    debiasing: str = "position",
) -> tuple[lgb.Booster | None, dict[str, Any]]:
    """LambdaRank over the candidates of users active in ``label_events`` (which all happen after ``now``).

    The label window's users are split in two: one part fits the trees, the other stops the boosting.
    ``pages``: the label window's logged pages (``training.impressions``), more lists to fit: their shown
    and not clicked items are negatives, debiased by ``debiasing`` (``training.click_ranker``: LightGBM's
    ``position`` or ``ips`` weights from ``estimate``); the candidate lists count as one more position.
    """
    started = time.perf_counter()
    relevant = relevant_items(label_events, model.catalog, histories)
    users = sample_users(list(relevant), hp.max_ranker_users, hp.seed)
    fitting, holdout = split_holdout(users, hp.ranker_holdout, hp.seed)
    fit_part = ranker_examples(model, histories, relevant, fitting, now, hp.ranker_candidates, segments)
    stop_part = ranker_examples(model, histories, relevant, holdout, now, hp.ranker_candidates, segments)
    booster, info = fit_ranker(fit_part, stop_part, hp, pages, estimate, debiasing)
    logger.info("ranker: %s in %.1fs", info, time.perf_counter() - started)
    return booster, info


Examples = tuple[np.ndarray, np.ndarray, list[int]]  # features, labels, group sizes


def fit_ranker(
    fit_part: Examples,
    stop_part: Examples,
    hp: Hyperparameters,
    pages: ClickLists | None = None,
    estimate: PropensityEstimate | None = None,
    debiasing: str = "position",
) -> tuple[lgb.Booster | None, dict[str, Any]]:
    """LambdaRank trees on ``fit_part``, early-stopped on ``stop_part``; None when either holds fewer than
    ``MIN_RANKER_GROUPS`` lists with a positive."""
    (x_fit, y_fit, g_fit), (x_stop, y_stop, g_stop) = fit_part, stop_part
    info: dict[str, Any] = {
        "groups_fit": len(g_fit),
        "groups_early_stopping": len(g_stop),
        "rows": len(y_fit),
    }
    if len(g_fit) < MIN_RANKER_GROUPS or len(g_stop) < MIN_RANKER_GROUPS:
        logger.warning("ranker skipped: %s groups with a positive candidate are too few", info)
        return None, {**info, "trained": False}
    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "learning_rate": hp.ranker_learning_rate,
        "num_leaves": hp.ranker_leaves,
        "min_data_in_leaf": hp.ranker_min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": 1.0,
        "lambdarank_truncation_level": 20,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": hp.threads,
        "seed": hp.seed,
        "verbosity": -1,
    }
    # the popularity correction weighs the candidates' positives (training.popularity_bias)
    weight, position = positive_weights(x_fit, y_fit, hp.popularity_correction), None
    info["popularity_correction"] = hp.popularity_correction
    pages = pages.with_clicks() if pages is not None and debiasing != "off" else None
    if pages is not None and len(pages):
        estimate = estimate or flat_estimate()
        unshown = np.full(len(y_fit), int(pages.positions.max()) + 1)  # their own position factor
        clicked = (pages.labels > 0).astype(np.float32)
        own = weight if weight is not None else np.ones(len(y_fit))
        if debiasing == "ips":
            weight = np.r_[own, np.where(clicked > 0, estimate.weight(pages.positions), 1.0)]
        else:
            weight = None if weight is None else np.r_[own, np.ones(len(clicked))]
            position = np.r_[unshown, pages.positions].astype(np.int32)
            params["lambdarank_position_bias_regularization"] = hp.position_bias_regularization
        x_fit, y_fit, g_fit = (
            np.vstack([x_fit, pages.features]),
            np.r_[y_fit, clicked],
            [*g_fit, *pages.groups],
        )
        info = {**info, "impression_pages": len(pages), "debiasing": debiasing}
    fit_set = lgb.Dataset(
        x_fit,
        y_fit,
        group=g_fit,
        weight=weight,
        position=position,
        feature_name=list(FEATURE_NAMES),
        free_raw_data=False,
    )
    stop_set = lgb.Dataset(x_stop, y_stop, group=g_stop, reference=fit_set)
    booster = lgb.train(
        params,
        fit_set,
        num_boost_round=hp.ranker_rounds,
        valid_sets=[stop_set],
        valid_names=["early_stopping"],
        callbacks=[lgb.early_stopping(hp.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    score = float(booster.best_score.get("early_stopping", {}).get("ndcg@10", np.nan))
    gains = booster.feature_importance(importance_type="gain", iteration=best)
    info = {
        **info,
        "trained": True,
        "trees": int(best),
        "early_stopping_ndcg@10": score,
        "feature_importance": {
            name: round(float(gain), 3) for name, gain in zip(FEATURE_NAMES, gains, strict=True)
        },
    }
    # keep only the trees up to the best iteration, so serving needs no num_iteration argument
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return trimmed, info
