"""Recency-decayed popularity: what many people interacted with lately, overall or within a category."""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86_400.0


def recency_decay(timestamps: np.ndarray, now: float, half_life_days: float) -> np.ndarray:
    """Weight multiplier of an event at ``timestamps`` (epoch s) seen from ``now``: halves every half-life.

    Events after ``now`` count fully (clock skew must not inflate them).
    """
    age_days = np.maximum(now - np.asarray(timestamps, dtype=np.float64), 0.0) / SECONDS_PER_DAY
    return np.power(0.5, age_days / half_life_days)


def decayed_popularity(
    item_rows: np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray,
    now: float,
    half_life_days: float,
    n_items: int,
) -> np.ndarray:
    """float32 (n_items,): sum over events of ``weight * recency_decay`` per item row."""
    decayed = np.asarray(weights, dtype=np.float64) * recency_decay(timestamps, now, half_life_days)
    return np.bincount(np.asarray(item_rows, dtype=np.int64), weights=decayed, minlength=n_items).astype(
        np.float32
    )


def top_popular(
    popularity: np.ndarray,
    k: int,
    categories: np.ndarray | None = None,
    category: str | None = None,
    exclude: frozenset[int] | set[int] = frozenset(),
    tie: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most popular item rows and their popularity, best first; equal popularity is settled by
    ``tie`` (lower first: ``ItemModel.tie_rank``), by row only when no model gives one.

    With ``category``, only items of that category (``categories`` holds each row's category).
    """
    scores = np.asarray(popularity)
    if category is not None and categories is None:
        raise ValueError("a category filter needs the item categories")
    if category is None and not exclude:
        candidates = np.arange(len(scores))
    else:
        allowed = np.ones(len(scores), dtype=bool) if category is None else np.asarray(categories == category)
        if exclude:
            allowed[np.fromiter(exclude, dtype=np.int64, count=len(exclude))] = False
        candidates = np.flatnonzero(allowed)
    if len(candidates) == 0 or k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if len(candidates) > k:
        # the k best without sorting the whole catalogue; ties at the border are settled below
        kth = np.partition(-scores[candidates], k - 1)[k - 1]
        candidates = candidates[-scores[candidates] <= kth]
    second = candidates if tie is None else np.asarray(tie)[candidates]
    order = candidates[np.lexsort((second, -scores[candidates]))[:k]]
    return order.astype(np.int64), scores[order].astype(np.float64)
