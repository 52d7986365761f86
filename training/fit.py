"""Learning: the weighted user x item matrix, ALS + popularity + index (retrieval), the LightGBM ranker."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from merchandiser.catalog import (
    Catalog,
    ItemModel,
    Neighbours,
    Signals,
    decayed_popularity,
    fit_als,
    fit_content,
    fit_neighbours,
    recency_decay,
)
from merchandiser.ranking import FEATURE_NAMES, ranking_features
from merchandiser.retrieval import build_index
from merchandiser.retrieval import candidates as retrieve
from merchandiser.schemas import EVENT_WEIGHTS
from merchandiser.serving import Model
from merchandiser.shopper import UserState, segment_keys, state_from_rows

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
    trending_half_life_days: float = 7.0
    neighbours: int = 100  # co-occurrence neighbours kept per item
    content_regularization: float = 1.0
    min_segment_users: int = 20
    max_segments: int = 50
    seed: int = 7
    test_fraction: float = 0.1
    candidates: int = 1000  # per user in evaluation, as serving retrieves
    ranker_candidates: int = 300  # per user in the ranker's training lists (the cost grows with it)
    ranker_rounds: int = 300
    ranker_learning_rate: float = 0.05
    ranker_leaves: int = 31
    ranker_min_data_in_leaf: int = 20
    early_stopping_rounds: int = 30
    ranker_holdout: float = 0.2  # share of the label window's users kept for early stopping
    max_ranker_users: int = 5000
    max_eval_users: int = 5000
    # the quality gate scores production on the candidate's test window only with this many shoppers
    gate_min_users: int = 50
    threads: int = 1  # LightGBM threads; OpenMP spin-waits badly on a shared, busy machine
    anchor_trials: int = 20  # per tuned anchor (training.anchors), its default included; 0: defaults only
    anchor_seconds: float = 0.0  # per tuned anchor, a guard; 0: (30 s + 60 s per 100k events, <= 900) / 6
    ease_max_items: int = 6000  # the EASE anchors are skipped above this many items with events
    engine: str = "local"  # "spark": retrieval learnt on Spark (training.spark_fit), the rest on the driver

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RECENT_ITEMS = 20
NEIGHBOUR_HISTORY = 200
BASKET_EVENTS = ("purchase", "add_to_cart")


@dataclass(frozen=True)
class UserHistory:
    weights: dict[int, float]  # item row -> decayed weight
    purchased: frozenset[int]
    recent: list[int] = field(default_factory=list)  # item rows, most recently touched first
    category_seen: dict[str, float] = field(default_factory=dict)  # category -> last touch, epoch s
    segments: tuple[str, ...] = ()

    def state(self, model: ItemModel) -> UserState:
        """The serving state of this shopper (``shopper.user_state`` with rows instead of ids)."""
        return state_from_rows(
            model, self.weights, self.recent, self.purchased, self.category_seen, self.segments
        )


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
            "last": epoch_seconds(interactions["timestamp"])[known],
        }
    )
    return frame.groupby(["user_id", "row"], sort=True, as_index=False).agg(
        weight=("weight", "sum"), purchased=("purchased", "any"), last=("last", "max")
    )


def user_histories(
    pairs: pd.DataFrame, catalog: Catalog, segments: dict[str, tuple[str, ...]] | None = None
) -> dict[str, UserHistory]:
    """Each user's history, built from sorted arrays cut at user boundaries (a pandas group per user
    costs minutes on a few hundred thousand users)."""
    segments = segments or {}
    ordered = pairs.sort_values(["user_id", "last", "row"], ascending=[True, False, True], kind="stable")
    users = ordered["user_id"].astype(str).to_numpy()
    rows = ordered["row"].to_numpy()
    weights = ordered["weight"].to_numpy()
    bought = ordered["purchased"].to_numpy()
    lasts = ordered["last"].to_numpy()
    categories = catalog.categories[rows]
    cuts = np.flatnonzero(users[1:] != users[:-1]) + 1
    histories: dict[str, UserHistory] = {}
    for start, end in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(users)].tolist(), strict=True):
        user_id = str(users[start])
        user_rows = rows[start:end]
        histories[user_id] = UserHistory(
            weights=dict(zip(user_rows.tolist(), weights[start:end].tolist(), strict=True)),
            purchased=frozenset(user_rows[bought[start:end]].tolist()),
            recent=user_rows[:RECENT_ITEMS].tolist(),
            # rows come latest first: reversed, the latest touch of a category is the one kept
            category_seen=dict(
                zip(
                    categories[start:end][::-1].tolist(),
                    lasts[start:end][::-1].astype(float).tolist(),
                    strict=True,
                )
            ),
            segments=segments.get(user_id, ()),
        )
    return histories


def user_segments(users: pd.DataFrame | None) -> dict[str, tuple[str, ...]]:
    """Each user's segment keys from the users channel's attribute columns."""
    if users is None or users.empty:
        return {}
    columns = [column for column in users.columns if column != "user_id"]
    return {
        str(record[0]): segment_keys(
            {column: str(value) for column, value in zip(columns, record[1:], strict=True)}
        )
        for record in users[["user_id", *columns]].itertuples(index=False)
    }


def fit_retrieval(
    interactions: pd.DataFrame,
    catalog: Catalog,
    now: float,
    hp: Hyperparameters,
    users: pd.DataFrame | None = None,
) -> tuple[ItemModel, dict[str, UserHistory]]:
    """Every retrieval artifact learnt from ``interactions`` (all before ``now``): ALS item factors (items
    without interactions placed by their attributes), popularity, trending, co-occurrence, segment
    popularity and the HNSW index. Returns the model (no ranker yet) and each user's history at ``now``.
    """
    started = time.perf_counter()
    pairs = user_item_weights(interactions, catalog, now, hp.half_life_days)
    user_ids = sorted(pairs["user_id"].unique())
    user_row = {user: position for position, user in enumerate(user_ids)}
    user_positions = pairs["user_id"].map(user_row).to_numpy()
    matrix = csr_matrix(
        (pairs["weight"].to_numpy(np.float32), (user_positions, pairs["row"].to_numpy())),
        shape=(len(user_ids), len(catalog)),
    )
    factors = fit_als(matrix, hp.factors, hp.regularization, hp.alpha, hp.iterations, hp.cg_steps, hp.seed)
    als_seconds = time.perf_counter() - started
    segments = user_segments(users)
    model = assemble_retrieval(
        catalog,
        factors.item_factors.copy(),
        trained=np.bincount(pairs["row"].to_numpy(), minlength=len(catalog)) > 0,
        popularity=item_popularity(interactions, catalog, now, hp.half_life_days),
        trending=item_popularity(interactions, catalog, now, hp.trending_half_life_days),
        also_viewed=shopper_neighbours(pairs, user_row, len(catalog), hp.neighbours),
        bought_together=basket_neighbours(interactions, catalog, hp.neighbours),
        segments=segment_popularity(interactions, catalog, segments, now, hp),
        hp=hp,
    )
    logger.info(
        "retrieval: %d users x %d items, %d non-zeros, %d items placed by content, %d segments;"
        " ALS %.1fs, the rest %.1fs",
        matrix.shape[0],
        matrix.shape[1],
        matrix.nnz,
        len(model.placed_rows),
        len(model.signals.segments),
        als_seconds,
        time.perf_counter() - started - als_seconds,
    )
    return model, user_histories(pairs, catalog, segments)


def assemble_retrieval(
    catalog: Catalog,
    item_factors: np.ndarray,
    trained: np.ndarray,
    popularity: np.ndarray,
    trending: np.ndarray,
    also_viewed: Neighbours,
    bought_together: Neighbours,
    segments: dict[str, np.ndarray],
    hp: Hyperparameters,
) -> ItemModel:
    """The retrieval model from what was learnt (by this module or by Spark, ``training.spark_fit``):
    items without interactions (not ``trained``) placed by their attributes, then the HNSW index."""
    content = fit_content(catalog, item_factors, trained, hp.content_regularization)
    placed = ~trained
    if placed.any():
        rows = np.flatnonzero(placed)
        item_factors[rows] = content.vectors(
            catalog.titles[rows].tolist(),
            catalog.categories[rows].tolist(),
            catalog.brands[rows].tolist(),
            catalog.prices[rows].tolist(),
        )
    signals = Signals(
        trending=trending,
        also_viewed=also_viewed,
        bought_together=bought_together,
        placed=placed,
        content=content,
        segments=segments,
    )
    manifest = {
        "model_version": "in-training",
        "als": {"factors": hp.factors, "regularization": hp.regularization, "alpha": hp.alpha},
    }
    return ItemModel(manifest, catalog, item_factors, popularity, build_index(item_factors, hp.seed), signals)


def shopper_neighbours(pairs: pd.DataFrame, user_row: dict[str, int], n_items: int, top_n: int) -> Neighbours:
    """The "also viewed" neighbours: co-occurrence within each shopper's latest ``NEIGHBOUR_HISTORY``
    items (a few very long histories would otherwise dominate the pairs and the cost, which grows as
    their square)."""
    latest = (
        pairs.sort_values(["user_id", "last", "row"], ascending=[True, False, True], kind="stable")
        .groupby("user_id", sort=False)
        .head(NEIGHBOUR_HISTORY)
    )
    return fit_neighbours(
        latest["user_id"].map(user_row).to_numpy(),
        latest["row"].to_numpy(),
        np.ones(len(latest)),
        n_items,
        top_n,
    )


def basket_neighbours(interactions: pd.DataFrame, catalog: Catalog, top_n: int) -> Neighbours:
    """ "Bought together": co-occurrence within a basket (the session, else the shopper's day) of the
    purchase and add-to-cart events."""
    baskets = interactions[interactions["event_type"].isin(BASKET_EVENTS)]
    rows = baskets["item_id"].map(catalog.row_of)
    known = rows.notna().to_numpy()
    baskets = baskets[known]
    if "session_id" in baskets.columns:
        day = baskets["timestamp"].dt.strftime("%Y-%m-%d")
        keys = baskets["session_id"].astype("string").fillna(baskets["user_id"].astype("string") + "/" + day)
    else:
        keys = baskets["user_id"].astype("string") + "/" + baskets["timestamp"].dt.strftime("%Y-%m-%d")
    groups = pd.factorize(keys.to_numpy(), sort=True)[0]
    return fit_neighbours(
        groups, rows.to_numpy()[known].astype(np.int64), np.ones(len(groups)), len(catalog), top_n
    )


def segment_popularity(
    interactions: pd.DataFrame,
    catalog: Catalog,
    segments: dict[str, tuple[str, ...]],
    now: float,
    hp: Hyperparameters,
) -> dict[str, np.ndarray]:
    """Decayed popularity among the users of each segment kept by ``kept_segments``."""
    kept = kept_segments(set(interactions["user_id"].unique()), segments, hp)
    return {
        key: item_popularity(
            interactions[interactions["user_id"].isin(users)], catalog, now, hp.half_life_days
        )
        for key, users in kept.items()
    }


def kept_segments(
    active: set[str], segments: dict[str, tuple[str, ...]], hp: Hyperparameters
) -> dict[str, set[str]]:
    """The ``max_segments`` largest segments with at least ``min_segment_users`` active users, and their
    users."""
    members: dict[str, set[str]] = {}
    for user_id, keys in segments.items():
        for key in keys:
            members.setdefault(key, set()).add(user_id)
    sizes = {key: len(users & active) for key, users in members.items()}
    kept = sorted(
        (key for key, size in sizes.items() if size >= hp.min_segment_users), key=lambda k: (-sizes[k], k)
    )
    return {key: members[key] for key in kept[: hp.max_segments]}


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
    model: ItemModel,
    histories: dict[str, UserHistory],
    relevant: dict[str, set[int]],
    users: list[str],
    now: float,
    k: int,
    segments: dict[str, tuple[str, ...]] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features, 0/1 labels and group sizes for users with at least one positive candidate; users new at
    ``now`` are served as serving serves them (their segment's candidates), so the ranker learns them too."""
    segments = segments or {}
    features, labels, groups = [], [], []
    for user_id in users:
        history = histories.get(user_id)
        if history is None:
            state = state_from_rows(model, {}, [], frozenset(), None, segments.get(user_id, ()))
        else:
            state = history.state(model)
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


def train_ranker(
    model: ItemModel,
    histories: dict[str, UserHistory],
    label_events: pd.DataFrame,
    now: float,
    hp: Hyperparameters,
    segments: dict[str, tuple[str, ...]] | None = None,
) -> tuple[lgb.Booster | None, dict[str, Any]]:
    """LambdaRank over the candidates of users active in ``label_events`` (which all happen after ``now``).

    The label window's users are split in two: one part fits the trees, the other stops the boosting.
    """
    started = time.perf_counter()
    relevant = relevant_items(label_events, model.catalog, histories)
    users = sample_users(list(relevant), hp.max_ranker_users, hp.seed)
    order = np.random.default_rng(hp.seed).permutation(len(users))
    n_holdout = round(hp.ranker_holdout * len(users))
    holdout = [users[position] for position in sorted(order[:n_holdout])]
    fitting = [users[position] for position in sorted(order[n_holdout:])]
    x_fit, y_fit, g_fit = ranker_examples(
        model, histories, relevant, fitting, now, hp.ranker_candidates, segments
    )
    x_stop, y_stop, g_stop = ranker_examples(
        model, histories, relevant, holdout, now, hp.ranker_candidates, segments
    )
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
    logger.info("ranker: %s in %.1fs", info, time.perf_counter() - started)
    # keep only the trees up to the best iteration, so serving needs no num_iteration argument
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return trimmed, info


def with_ranker(items: ItemModel, ranker: lgb.Booster | None) -> Model:
    """The retrieval model with a ranker: what serving loads."""
    return Model(items, ranker)
