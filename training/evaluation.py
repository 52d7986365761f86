"""Offline evaluation on the held-out future: baselines and the serving pipeline, scored the same way.

Every model sees each user's history before the test window only; the relevant items are what the
user interacted with in the test window, minus what they had already purchased (serving never
recommends those, so neither does any model here).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from merchandiser.model import Model
from merchandiser.popularity import top_popular
from training.fit import Hyperparameters, UserHistory, relevant_items, sample_users
from training.metrics import summarize

logger = logging.getLogger(__name__)

TOP_K = 20
MODELS = ("popularity", "als", "pipeline")


def recommend_popularity(model: Model, history: UserHistory | None) -> list[int]:
    exclude = history.purchased if history else frozenset()
    rows, _ = top_popular(model.popularity, TOP_K, exclude=exclude)
    return rows.tolist()


def recommend_als(model: Model, history: UserHistory | None) -> list[int]:
    """Brute-force ALS scores of the folded-in user; users without a history get popularity."""
    if history is None or not history.weights:
        return recommend_popularity(model, history)
    state = model.state_from_rows(history.weights, [], history.purchased)
    if state.vector is None:
        return recommend_popularity(model, history)
    scores = model.item_factors.astype(np.float64) @ state.vector.astype(np.float64)
    if history.purchased:
        scores[np.fromiter(history.purchased, dtype=np.int64)] = -np.inf
    return np.argsort(-scores, kind="stable")[:TOP_K].tolist()


def recommend_pipeline(model: Model, history: UserHistory | None, now: float, k: int) -> list[int]:
    """What serving does: candidates, ranker scores, best first (purchases are never candidates)."""
    if history is None:
        state = model.state_from_rows({}, [], frozenset())
    else:
        state = model.state_from_rows(history.weights, [], history.purchased)
    candidates = model.candidates(state, k)
    scores = model.score(state, candidates, now)
    return candidates.rows[np.argsort(-scores, kind="stable")[:TOP_K]].tolist()


def evaluate(
    pipeline: Model,
    histories: dict[str, UserHistory],
    test_events: pd.DataFrame,
    now: float,
    hp: Hyperparameters,
) -> dict[str, dict[str, Any]]:
    """Metrics of each model over the users active in ``test_events`` (a deterministic sample if many)."""
    started = time.perf_counter()
    relevant = relevant_items(test_events, pipeline.catalog, histories)
    users = sample_users(list(relevant), hp.max_eval_users, hp.seed)
    relevant = {user: relevant[user] for user in users}
    known = [user for user in users if user in histories]
    recommenders = {
        "popularity": lambda history: recommend_popularity(pipeline, history),
        "als": lambda history: recommend_als(pipeline, history),
        "pipeline": lambda history: recommend_pipeline(pipeline, history, now, hp.candidates),
    }
    results: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        recommend = recommenders[name]
        recommendations = {user: recommend(histories.get(user)) for user in users}
        metrics = summarize(recommendations, relevant, len(pipeline.catalog))
        metrics["known_users"] = summarize(
            {user: recommendations[user] for user in known},
            {user: relevant[user] for user in known},
            len(pipeline.catalog),
        )
        results[name] = metrics
        logger.info(
            "evaluation %s: %s", name, {key: value for key, value in metrics.items() if key != "known_users"}
        )
    logger.info(
        "evaluation of %d users (%d known) took %.1fs", len(users), len(known), time.perf_counter() - started
    )
    return results
