"""Learning: the weighted user x item matrix, ALS + popularity + index (retrieval), the LightGBM ranker."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from merchandiser.als import fit_als
from merchandiser.artifacts import Catalog
from merchandiser.candidate_sources import build_index
from merchandiser.features import FEATURE_NAMES, ranking_features
from merchandiser.model import Model
from merchandiser.popularity import decayed_popularity, recency_decay
from merchandiser.schemas import EVENT_WEIGHTS

logger = logging.getLogger(__name__)

NANOS_PER_SECOND = 1_000_000_000
MIN_RANKER_GROUPS = 10  # per part (fit / early stopping); fewer and the ranker is skipped


@dataclass(frozen=True)
class Hyperparameters:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    cg_steps: int = 3
    half_life_days: float = 30.0
    seed: int = 7
    test_fraction: float = 0.1
    candidates: int = 300  # per user, for ranker training and evaluation
    ranker_rounds: int = 300
    ranker_learning_rate: float = 0.05
    ranker_leaves: int = 31
    ranker_min_data_in_leaf: int = 20
    early_stopping_rounds: int = 30
    ranker_holdout: float = 0.2  # share of the label window's users kept for early stopping
    max_ranker_users: int = 5000
    max_eval_users: int = 5000
    threads: int = 1  # LightGBM threads; OpenMP spin-waits badly on a shared, busy machine

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UserHistory:
    weights: dict[int, float]  # item row -> decayed weight
    purchased: frozenset[int]


def epoch_seconds(stamps: pd.Series | pd.Timestamp) -> Any:
    """UTC timestamps -> float epoch seconds (array for a Series)."""
    if isinstance(stamps, pd.Timestamp):
        return stamps.value / NANOS_PER_SECOND
    return stamps.astype("int64").to_numpy() / NANOS_PER_SECOND


def build_catalog(items: pd.DataFrame) -> Catalog:
    """Item rows in ``item_id`` order, so the same items always get the same rows."""
    frame = items.sort_values("item_id", kind="stable").reset_index(drop=True)
    created = frame["created_at"]
    created_seconds = np.where(created.isna(), np.nan, created.astype("int64").to_numpy() / NANOS_PER_SECOND)
    return Catalog(
        item_ids=frame["item_id"].to_numpy(dtype=str),
        titles=frame["title"].to_numpy(dtype=str),
        categories=frame["category"].to_numpy(dtype=str),
        brands=frame["brand"].to_numpy(dtype=str),
        prices=frame["price"].to_numpy(dtype=np.float64),
        created_at=created_seconds.astype(np.float64),
        in_stock=frame["in_stock"].to_numpy(dtype=bool),
    )


def event_weights(interactions: pd.DataFrame) -> np.ndarray:
    """Implicit-feedback weight of each event: ``EVENT_WEIGHTS``, a rating scaled by its value / 5."""
    weights = interactions["event_type"].map(EVENT_WEIGHTS).to_numpy(dtype=np.float64)
    if "value" in interactions.columns:
        rating = (interactions["event_type"] == "rating").to_numpy()
        values = interactions["value"].to_numpy(dtype=np.float64)
        weights = np.where(rating & ~np.isnan(values), weights * values / 5.0, weights)
    return weights


def user_item_weights(
    interactions: pd.DataFrame, catalog: Catalog, now: float, half_life_days: float
) -> pd.DataFrame:
    """One row per (user_id, item row): summed event weight x recency decay at ``now``, and purchased."""
    rows = interactions["item_id"].map(catalog.row_of)
    known = rows.notna().to_numpy()
    frame = pd.DataFrame(
        {
            "user_id": interactions["user_id"].to_numpy()[known],
            "row": rows.to_numpy()[known].astype(np.int64),
            "weight": (
                event_weights(interactions)
                * recency_decay(epoch_seconds(interactions["timestamp"]), now, half_life_days)
            )[known],
            "purchased": (interactions["event_type"] == "purchase").to_numpy()[known],
        }
    )
    return frame.groupby(["user_id", "row"], sort=True, as_index=False).agg(
        weight=("weight", "sum"), purchased=("purchased", "any")
    )


def user_histories(pairs: pd.DataFrame) -> dict[str, UserHistory]:
    histories: dict[str, UserHistory] = {}
    for user_id, group in pairs.groupby("user_id", sort=True):
        rows = group["row"].tolist()
        histories[str(user_id)] = UserHistory(
            weights=dict(zip(rows, group["weight"].tolist(), strict=True)),
            purchased=frozenset(group.loc[group["purchased"], "row"].tolist()),
        )
    return histories


def fit_retrieval(
    interactions: pd.DataFrame, catalog: Catalog, now: float, hp: Hyperparameters
) -> tuple[Model, dict[str, UserHistory]]:
    """ALS item factors, popularity and the HNSW index learnt from ``interactions`` (all before ``now``).

    Returns the model (no ranker yet) and each user's history as of ``now``.
    """
    started = time.perf_counter()
    pairs = user_item_weights(interactions, catalog, now, hp.half_life_days)
    user_ids = sorted(pairs["user_id"].unique())
    user_row = {user: position for position, user in enumerate(user_ids)}
    matrix = csr_matrix(
        (
            pairs["weight"].to_numpy(np.float32),
            (pairs["user_id"].map(user_row).to_numpy(), pairs["row"].to_numpy()),
        ),
        shape=(len(user_ids), len(catalog)),
    )
    factors = fit_als(matrix, hp.factors, hp.regularization, hp.alpha, hp.iterations, hp.cg_steps, hp.seed)
    als_seconds = time.perf_counter() - started
    popularity = item_popularity(interactions, catalog, now, hp.half_life_days)
    index = build_index(factors.item_factors, hp.seed)
    logger.info(
        "retrieval: %d users x %d items, %d non-zeros; ALS %.1fs, index %.1fs",
        matrix.shape[0],
        matrix.shape[1],
        matrix.nnz,
        als_seconds,
        time.perf_counter() - started - als_seconds,
    )
    manifest = {
        "model_version": "in-training",
        "als": {"factors": hp.factors, "regularization": hp.regularization, "alpha": hp.alpha},
    }
    model = Model(manifest, catalog, factors.item_factors, popularity, index, None)
    return model, user_histories(pairs)


def item_popularity(
    interactions: pd.DataFrame, catalog: Catalog, now: float, half_life_days: float
) -> np.ndarray:
    rows = interactions["item_id"].map(catalog.row_of)
    known = rows.notna().to_numpy()
    return decayed_popularity(
        rows.to_numpy()[known].astype(np.int64),
        event_weights(interactions)[known],
        epoch_seconds(interactions["timestamp"])[known],
        now,
        half_life_days,
        len(catalog),
    )


def relevant_items(
    events: pd.DataFrame, catalog: Catalog, histories: dict[str, UserHistory]
) -> dict[str, set[int]]:
    """Per user, the item rows interacted with in ``events`` minus what they had already purchased."""
    rows = events["item_id"].map(catalog.row_of)
    frame = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "row": rows.to_numpy()}).dropna()
    relevant: dict[str, set[int]] = {}
    for user_id, group in frame.groupby("user_id", sort=True):
        history = histories.get(str(user_id))
        bought = history.purchased if history else frozenset()
        items = {int(row) for row in group["row"].tolist()} - bought
        if items:
            relevant[str(user_id)] = items
    return relevant


def sample_users(users: list[str], limit: int, seed: int) -> list[str]:
    users = sorted(users)
    if len(users) <= limit:
        return users
    picked = np.random.default_rng(seed).choice(len(users), size=limit, replace=False)
    return [users[position] for position in sorted(picked)]


def ranker_examples(
    model: Model,
    histories: dict[str, UserHistory],
    relevant: dict[str, set[int]],
    users: list[str],
    now: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features, 0/1 labels and group sizes for users with a history and at least one positive candidate."""
    features, labels, groups = [], [], []
    for user_id in users:
        history = histories.get(user_id)
        if history is None:
            continue
        state = model.state_from_rows(history.weights, [], history.purchased)
        candidates = model.candidates(state, k)
        label = np.isin(candidates.rows, np.fromiter(relevant[user_id], dtype=np.int64)).astype(np.float32)
        if not label.any():
            continue
        features.append(
            ranking_features(state, candidates, model.catalog, model.popularity, model.item_factors, now)
        )
        labels.append(label)
        groups.append(len(label))
    if not groups:
        return np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0, np.float32), []
    return np.vstack(features), np.concatenate(labels), groups


def train_ranker(
    model: Model,
    histories: dict[str, UserHistory],
    label_events: pd.DataFrame,
    now: float,
    hp: Hyperparameters,
) -> tuple[lgb.Booster | None, dict[str, Any]]:
    """LambdaRank over the candidates of users active in ``label_events`` (which all happen after ``now``).

    The label window's users are split in two: one part fits the trees, the other stops the boosting.
    """
    started = time.perf_counter()
    relevant = relevant_items(label_events, model.catalog, histories)
    users = sample_users([user for user in relevant if user in histories], hp.max_ranker_users, hp.seed)
    order = np.random.default_rng(hp.seed).permutation(len(users))
    n_holdout = round(hp.ranker_holdout * len(users))
    holdout = [users[position] for position in sorted(order[:n_holdout])]
    fitting = [users[position] for position in sorted(order[n_holdout:])]
    x_fit, y_fit, g_fit = ranker_examples(model, histories, relevant, fitting, now, hp.candidates)
    x_stop, y_stop, g_stop = ranker_examples(model, histories, relevant, holdout, now, hp.candidates)
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
    fit_set = lgb.Dataset(x_fit, y_fit, group=g_fit, feature_name=list(FEATURE_NAMES), free_raw_data=False)
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
    info = {**info, "trained": True, "trees": int(best), "early_stopping_ndcg@10": score}
    logger.info("ranker: %s in %.1fs", info, time.perf_counter() - started)
    # keep only the trees up to the best iteration, so serving needs no num_iteration argument
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return trimmed, info


def with_ranker(model: Model, ranker: lgb.Booster | None, popularity: np.ndarray | None = None) -> Model:
    """The same retrieval with a ranker (and optionally fresher popularity)."""
    return Model(
        model.manifest,
        model.catalog,
        model.item_factors,
        model.popularity if popularity is None else popularity,
        model.index,
        ranker,
    )
