"""Learning: the weighted user x item matrix, ALS + popularity + index (retrieval); the LightGBM ranker is in
``training.ranker``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
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
    fit_als,
    fit_content,
    fit_neighbours,
    recency_decay,
)
from merchandiser.retrieval import CONTENT_EXACT_ROWS, build_index
from merchandiser.schemas import EVENT_WEIGHTS
from merchandiser.serving import Model
from merchandiser.shopper import UserState, segment_keys, state_from_rows
from training.events import (
    HOURS_PER_DAY,
    NANOS_PER_SECOND,
    EventArrays,
    ListSettings,
    epoch_seconds,
    event_weights,
    item_rows,
)
from training.popularity_bias import als_pair_weights

logger = logging.getLogger(__name__)

PAGE_DEBIASING = ("position", "ips", "off")


@dataclass(frozen=True)
class Hyperparameters:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    cg_steps: int = 3
    half_life_days: float = 30.0
    # implicit feedback of each event type in the user x item matrix (schemas.EVENT_WEIGHTS by default)
    view_weight: float = EVENT_WEIGHTS["view"]
    click_weight: float = EVENT_WEIGHTS["click"]
    favourite_weight: float = EVENT_WEIGHTS["favourite"]
    cart_weight: float = EVENT_WEIGHTS["add_to_cart"]
    purchase_weight: float = EVENT_WEIGHTS["purchase"]
    rating_weight: float = EVENT_WEIGHTS["rating"]
    trending_half_life_days: float = 7.0
    trending_window_days: float = 56.0  # events older than this do not trend at all
    trending_weighting: str = "event_weight"  # or "count": every event counts once
    recent_half_life_hours: float = 72.0  # the recent_popularity source, feature and tie-break
    recent_weighting: str = "event_weight"
    neighbours: int = 100  # co-occurrence neighbours kept per item
    cooccurrence_items: int = 200  # each shopper's latest items that "also viewed" pairs up
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
    threads: int = 1  # LightGBM and ALS threads; OpenMP spin-waits badly on a shared, busy machine
    # validation tuning (training/tuning/): trials over all its stages, 0 = off; CPU seconds, -1 = scaled
    # with the training window (tuning.auto_seconds), 0 = off
    tuning_trials: int = 40
    tuning_seconds: float = -1.0
    tuning_users: int = 1000  # validation shoppers whose served page is the objective (a sample if more)
    anchor_trials: int = 20  # per tuned anchor (training.anchors), its default included; 0: defaults only
    anchor_seconds: float = 0.0  # per tuned anchor, a guard; 0: (30 s + 60 s per 100k events, <= 900) / 6
    ease_max_items: int = 6000  # the EASE anchors are skipped above this many items with events
    engine: str = "local"  # "spark": retrieval learnt on Spark (training.spark_fit), the rest on the driver
    # the ranker's positives weighed by (1 + popularity)^-this (training.popularity_bias); 0: none
    popularity_correction: float = 0.0
    # the ALS matrix's pairs weighed by (1 + shoppers of the item)^-this (training.popularity_bias); 0: none
    als_popularity_correction: float = 0.0
    # Learning from what was shown (training.impressions): the impressions of this many days before the
    # test window, and the test window's own, estimate the position propensities; the click ranker is
    # compared only with this many pages with a click, and LambdaRank's sizes for it.
    impression_window_days: float = 30.0
    min_click_pages: int = 200
    click_ranker_rounds: int = 50
    click_ranker_leaves: int = 7
    click_ranker_min_data_in_leaf: int = 50
    position_bias_regularization: float = 0.0  # lambdarank_position_bias_regularization
    # How the logged pages join the ranker's lists when no comparison could choose (too few pages with a
    # click in the validation window): "position" (LightGBM's) or "ips"; "off" leaves the pages out.
    page_debiasing: str = "position"

    def __post_init__(self) -> None:
        if self.page_debiasing not in PAGE_DEBIASING:
            raise ValueError(f"page_debiasing must be one of {', '.join(PAGE_DEBIASING)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def event_weights(self) -> dict[str, float]:
        """Event type -> implicit-feedback weight, for the user x item matrix and the manifest."""
        return {
            "view": self.view_weight,
            "click": self.click_weight,
            "add_to_cart": self.cart_weight,
            "purchase": self.purchase_weight,
            "rating": self.rating_weight,
            "favourite": self.favourite_weight,
        }

    def trending_list(self) -> ListSettings:
        return ListSettings(
            self.trending_half_life_days * HOURS_PER_DAY,
            self.trending_weighting,
            self.trending_window_days * HOURS_PER_DAY if self.trending_window_days > 0 else None,
        )

    def recent_list(self) -> ListSettings:
        return ListSettings(self.recent_half_life_hours, self.recent_weighting)

    def popularity_list(self) -> ListSettings:
        return ListSettings(self.half_life_days * HOURS_PER_DAY)


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
    # item row -> summed event weight at the stream's weights (``EVENT_WEIGHTS``), undecayed: the cells a
    # personal anchor is fitted on (``training.anchors.window``), so the served anchor scores as it did
    raw_weights: dict[int, float] = field(default_factory=dict)
    # the shopper's latest event (epoch s): the profile's history is written decayed to it
    # (``bundle.user_feature_records``), which moves only when the shopper has a new event
    latest: float | None = None

    def state(self, model: ItemModel) -> UserState:
        """The serving state of this shopper (``shopper.user_state`` with rows instead of ids)."""
        return state_from_rows(
            model,
            self.weights,
            self.recent,
            self.purchased,
            self.category_seen,
            self.segments,
            self.raw_weights,
        )


@dataclass(frozen=True)
class PopularityLists:
    """The per-item lists learnt from the events (by this module or by Spark): popularity, trending and
    recent popularity (``Hyperparameters.popularity_list``, ``trending_list``, ``recent_list``), float32
    (n_items,), and each item's latest event (epoch s, NaN for none), the tie-breaks' second key."""

    popularity: np.ndarray
    trending: np.ndarray
    recent_popularity: np.ndarray
    last_seen: np.ndarray


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


def user_item_weights(
    interactions: pd.DataFrame,
    catalog: Catalog,
    now: float,
    half_life_days: float,
    weights_by_type: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (user_id, item row): summed event weight x recency decay at ``now`` (``weight``), the
    summed weight at the stream's event weights without decay (``raw_weight``), and purchased."""
    rows = item_rows(interactions, catalog)
    known = rows >= 0
    frame = pd.DataFrame(
        {
            "user_id": interactions["user_id"].to_numpy()[known],
            "row": rows[known],
            "weight": (
                event_weights(interactions, weights_by_type)
                * recency_decay(epoch_seconds(interactions["timestamp"]), now, half_life_days)
            )[known],
            "raw_weight": event_weights(interactions)[known],
            "purchased": (interactions["event_type"] == "purchase").to_numpy()[known],
            "last": epoch_seconds(interactions["timestamp"])[known],
        }
    )
    return frame.groupby(["user_id", "row"], sort=True, as_index=False).agg(
        weight=("weight", "sum"),
        raw_weight=("raw_weight", "sum"),
        purchased=("purchased", "any"),
        last=("last", "max"),
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
    raw = ordered["raw_weight"].to_numpy() if "raw_weight" in ordered else None
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
            raw_weights=(
                {} if raw is None else dict(zip(user_rows.tolist(), raw[start:end].tolist(), strict=True))
            ),
            latest=float(lasts[start]),  # rows come latest first
        )
    return histories


def positions_of(user_ids: pd.Series, user_row: dict[str, int]) -> np.ndarray:
    """``user_row`` of each id, as one hash lookup over the column (a dict ``map`` costs seconds on
    millions of rows); ``user_row`` numbers its keys 0, 1, ... in their order."""
    return pd.Index(list(user_row)).get_indexer(user_ids).astype(np.int64)


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
    pairs = user_item_weights(interactions, catalog, now, hp.half_life_days, hp.event_weights())
    user_ids = sorted(pairs["user_id"].unique())
    user_row = {user: position for position, user in enumerate(user_ids)}
    user_positions = positions_of(pairs["user_id"], user_row)
    weights = pairs["weight"].to_numpy(np.float64)
    debiased = als_pair_weights(pairs["row"].to_numpy(), len(catalog), hp.als_popularity_correction)
    if debiased is not None:
        weights = weights * debiased
    matrix = csr_matrix(
        (weights.astype(np.float32), (user_positions, pairs["row"].to_numpy())),
        shape=(len(user_ids), len(catalog)),
    )
    factors = fit_als(
        matrix, hp.factors, hp.regularization, hp.alpha, hp.iterations, hp.cg_steps, hp.seed, hp.threads
    )
    als_seconds = time.perf_counter() - started
    segments = user_segments(users)
    events = EventArrays.of(interactions, catalog)
    model = assemble_retrieval(
        catalog,
        factors.item_factors.copy(),
        trained=np.bincount(pairs["row"].to_numpy(), minlength=len(catalog)) > 0,
        lists=PopularityLists(
            popularity=events.scores(now, hp.popularity_list()),
            trending=events.scores(now, hp.trending_list()),
            recent_popularity=events.scores(now, hp.recent_list()),
            last_seen=events.last_seen(),
        ),
        also_viewed=shopper_neighbours(pairs, user_row, len(catalog), hp.neighbours, hp.cooccurrence_items),
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
    lists: PopularityLists,
    also_viewed: Neighbours,
    bought_together: Neighbours,
    segments: dict[str, np.ndarray],
    hp: Hyperparameters,
) -> ItemModel:
    """The retrieval model from what was learnt (by this module or by Spark, ``training.spark_fit``):
    items without interactions (not ``trained``) placed by their attributes, then the HNSW index (two when
    the placed items are more than ``retrieval.content`` searches exactly: the trained items', theirs)."""
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
        trending=lists.trending,
        also_viewed=also_viewed,
        bought_together=bought_together,
        placed=placed,
        content=content,
        segments=segments,
        recent_popularity=lists.recent_popularity,
        last_seen=lists.last_seen,
    )
    manifest = {
        "model_version": "in-training",
        "als": {"factors": hp.factors, "regularization": hp.regularization, "alpha": hp.alpha},
        "event_weights": hp.event_weights(),
    }
    if int(placed.sum()) > CONTENT_EXACT_ROWS:  # too many to search exactly: an index of their own
        index = build_index(item_factors, hp.seed, np.flatnonzero(trained))
        content_index = build_index(item_factors, hp.seed, np.flatnonzero(placed))
    else:
        index, content_index = build_index(item_factors, hp.seed), None
    return ItemModel(manifest, catalog, item_factors, lists.popularity, index, signals, content_index)


def shopper_neighbours(
    pairs: pd.DataFrame,
    user_row: dict[str, int],
    n_items: int,
    top_n: int,
    window: int = NEIGHBOUR_HISTORY,
) -> Neighbours:
    """The "also viewed" neighbours: co-occurrence within each shopper's latest ``window`` items (a few
    very long histories would otherwise dominate the pairs and the cost, which grows as their square; a
    short window pairs what a shopper looked at together, a long one their lasting tastes)."""
    latest = (
        pairs.sort_values(["user_id", "last", "row"], ascending=[True, False, True], kind="stable")
        .groupby("user_id", sort=False)
        .head(window)
    )
    return fit_neighbours(
        positions_of(latest["user_id"], user_row),
        latest["row"].to_numpy(),
        np.ones(len(latest)),
        n_items,
        top_n,
    )


def basket_neighbours(interactions: pd.DataFrame, catalog: Catalog, top_n: int) -> Neighbours:
    """ "Bought together": co-occurrence within a basket (the session, else the shopper's day) of the
    purchase and add-to-cart events."""
    baskets = interactions[interactions["event_type"].isin(BASKET_EVENTS)]
    rows = item_rows(baskets, catalog)
    known = rows >= 0
    baskets = baskets[known]
    if "session_id" in baskets.columns:
        day = baskets["timestamp"].dt.strftime("%Y-%m-%d")
        keys = baskets["session_id"].astype("string").fillna(baskets["user_id"].astype("string") + "/" + day)
    else:
        keys = baskets["user_id"].astype("string") + "/" + baskets["timestamp"].dt.strftime("%Y-%m-%d")
    groups = pd.factorize(keys.to_numpy(), sort=True)[0]
    return fit_neighbours(groups, rows[known], np.ones(len(groups)), len(catalog), top_n)


def segment_popularity(
    interactions: pd.DataFrame,
    catalog: Catalog,
    segments: dict[str, tuple[str, ...]],
    now: float,
    hp: Hyperparameters,
) -> dict[str, np.ndarray]:
    """Decayed popularity among the users of each segment kept by ``kept_segments`` (``item_popularity``
    of the segment's events): the events read once, each segment a mask over them (filtering the frame
    by user per segment cost a sixth of a 10M-event retrieval fit)."""
    codes, users = pd.factorize(interactions["user_id"].astype(str))
    kept = kept_segments(set(users.tolist()), segments, hp)
    if not kept:
        return {}
    events, known = EventArrays.with_known(interactions, catalog)
    codes = codes[known]
    settings = ListSettings(hp.half_life_days * HOURS_PER_DAY)
    popularity = {}
    for key, members in kept.items():
        member = np.zeros(len(users), dtype=bool)
        positions = pd.Index(users).get_indexer(sorted(members))
        member[positions[positions >= 0]] = True
        popularity[key] = events.subset(member[codes]).scores(now, settings)
    return popularity


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
    return EventArrays.of(interactions, catalog).scores(now, ListSettings(half_life_days * HOURS_PER_DAY))


def relevant_items(
    events: pd.DataFrame, catalog: Catalog, histories: dict[str, UserHistory]
) -> dict[str, set[int]]:
    """Per user, the item rows interacted with in ``events`` minus what they had already purchased."""
    rows = item_rows(events, catalog)
    known = rows >= 0
    frame = pd.DataFrame({"user_id": events["user_id"].to_numpy()[known], "row": rows[known]})
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


def with_ranker(items: ItemModel, ranker: lgb.Booster | None) -> Model:
    """The retrieval model with a ranker: what serving loads."""
    return Model(items, ranker)
