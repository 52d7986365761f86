"""Ranker features: the one function that turns (user, candidates) into the LightGBM input.

Training builds its ranker examples with ``ranking_features`` and serving scores with it, so a feature
cannot be computed one way offline and another way online. Missing values are NaN (LightGBM routes them).
"""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import SECONDS_PER_DAY, ItemModel
from merchandiser.retrieval import RANKED_SOURCES, Candidates
from merchandiser.shopper import UserState

LAST_VIEWS = 5  # the shopper's latest items the "last views" features look at

FEATURE_NAMES: tuple[str, ...] = (
    *(f"{source}_{kind}" for source in RANKED_SOURCES for kind in ("score", "rank")),
    "als_score",  # user vector . item vector for every candidate, whichever source proposed it
    "item_popularity_log",
    "segment_popularity_log",  # popularity among the shopper's segment (country...), NaN when unknown
    "trending_log",
    "recent_popularity_log",  # popularity with the half-life tuned for the shop
    "trend_ratio",  # log of this week's weight over the long-term weight: rising (>0) or fading (<0)
    "item_age_days",
    "item_placed",  # 1 when the item's vector comes from its attributes (no interactions yet)
    "price_ratio",  # item price / mean price of the user's purchases
    "category_affinity",  # share of the user's history weight in the item's category
    "days_since_category",  # since the user last touched the item's category; NaN if never
    "same_category_as_last",  # 1 when the item shares the category of the user's most recent item
    "last_viewed_position",  # 0 when the item is the shopper's latest item, 1 the one before...; NaN beyond
    "last_views_category_share",  # share of the shopper's latest items in the item's category
    "user_activity_log",
    "history_count",
)


def source_ranks(scores: np.ndarray) -> np.ndarray:
    """0 for the best-scored candidate of a source, 1 for the next...; NaN where the source is absent."""
    ranks = np.full(len(scores), np.nan)
    present = np.flatnonzero(~np.isnan(scores))
    order = present[np.argsort(-scores[present], kind="stable")]
    ranks[order] = np.arange(len(order), dtype=np.float64)
    return ranks


def ranking_features(user: UserState, candidates: Candidates, model: ItemModel, now: float) -> np.ndarray:
    """float32 (len(candidates), len(FEATURE_NAMES)); ``now`` is epoch seconds."""
    rows = candidates.rows
    catalog, signals = model.catalog, model.signals
    columns: dict[str, np.ndarray] = {}
    for source in RANKED_SOURCES:
        scores = candidates.scores.get(source, np.full(len(rows), np.nan))
        columns[f"{source}_score"] = scores
        columns[f"{source}_rank"] = source_ranks(scores)

    if user.vector is not None:
        columns["als_score"] = model.item_factors[rows].astype(np.float64) @ user.vector.astype(np.float64)
    else:
        columns["als_score"] = np.full(len(rows), np.nan)
    popularity = model.popularity[rows].astype(np.float64)
    trending = signals.trending[rows].astype(np.float64)
    columns["item_popularity_log"] = np.log1p(popularity)
    segment = model.segment_popularity(user.segments)
    columns["segment_popularity_log"] = (
        np.full(len(rows), np.nan)
        if segment is model.popularity
        else np.log1p(segment[rows].astype(np.float64))
    )
    columns["trending_log"] = np.log1p(trending)
    columns["recent_popularity_log"] = np.log1p(signals.recent_popularity[rows].astype(np.float64))
    columns["trend_ratio"] = np.log1p(trending) - np.log1p(popularity)
    columns["item_age_days"] = (now - catalog.created_at[rows].astype(np.float64)) / SECONDS_PER_DAY
    columns["item_placed"] = signals.placed[rows].astype(np.float64)

    prices = catalog.prices[rows].astype(np.float64)
    purchased = np.fromiter(user.purchased, dtype=np.int64, count=len(user.purchased))
    purchased_prices = catalog.prices[purchased].astype(np.float64) if len(purchased) else np.empty(0)
    purchased_prices = purchased_prices[~np.isnan(purchased_prices)]
    mean_price = float(purchased_prices.mean()) if len(purchased_prices) else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["price_ratio"] = np.where(mean_price > 0, prices / mean_price, np.nan)

    # category features per distinct category of the candidates (a dozen), spread over them by index:
    # not a Python loop over a thousand candidates on every page
    names, of_name = np.unique(catalog.categories[rows], return_inverse=True)
    names_list = names.tolist()
    total_weight = float(sum(user.history.values()))
    columns["category_affinity"] = _category_affinity(user.history, total_weight, model, names_list)[of_name]
    last_seen = np.array([user.category_seen.get(name, np.nan) for name in names_list], dtype=np.float64)
    columns["days_since_category"] = ((now - last_seen) / SECONDS_PER_DAY)[of_name]
    if user.recent:
        last_category = catalog.categories[user.recent[0]]
        columns["same_category_as_last"] = (names == last_category).astype(np.float64)[of_name]
    else:
        columns["same_category_as_last"] = np.full(len(rows), np.nan)
    columns.update(_last_views(user, rows, names, of_name, model))
    columns["user_activity_log"] = np.full(len(rows), np.log1p(max(total_weight, 0.0)))
    columns["history_count"] = np.full(len(rows), float(len(user.history)))
    return (
        np.column_stack([columns[name] for name in FEATURE_NAMES])
        .astype(np.float32)
        .reshape(len(rows), len(FEATURE_NAMES))
    )


def _category_affinity(
    history: dict[int, float], total_weight: float, model: ItemModel, names: list[str]
) -> np.ndarray:
    """Per category of ``names``: its share of the shopper's history weight."""
    if not history or total_weight <= 0:
        return np.zeros(len(names))
    history_rows = np.fromiter(history, dtype=np.int64, count=len(history))
    history_weights = np.fromiter(history.values(), dtype=np.float64, count=len(history))
    weight_by_category: dict[str, float] = {}
    for category, weight in zip(
        model.catalog.categories[history_rows].tolist(), history_weights.tolist(), strict=True
    ):
        weight_by_category[category] = weight_by_category.get(category, 0.0) + weight
    return np.array([weight_by_category.get(name, 0.0) / total_weight for name in names], dtype=np.float64)


def _last_views(
    user: UserState, rows: np.ndarray, names: np.ndarray, of_name: np.ndarray, model: ItemModel
) -> dict[str, np.ndarray]:
    """Where the candidate stands among the shopper's latest items, and how much of them its category is
    (``names``: the candidates' distinct categories, ``of_name``: each candidate's among them)."""
    latest = user.recent[:LAST_VIEWS]
    position = np.full(len(rows), np.nan)
    if not latest:
        return {"last_viewed_position": position, "last_views_category_share": np.full(len(rows), np.nan)}
    for at, row in reversed(list(enumerate(latest))):  # reversed: an item seen twice keeps its latest place
        position[rows == row] = at
    latest_categories = model.catalog.categories[np.asarray(latest, dtype=np.int64)]
    share = (names[:, None] == latest_categories[None, :]).mean(axis=1) if len(names) else np.empty(0)
    return {"last_viewed_position": position, "last_views_category_share": share.astype(np.float64)[of_name]}
