"""``popularity``: recency-decayed best sellers, in the shopper's segment when known, optionally in a
category."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel, top_popular
from merchandiser.retrieval.proposal import Ask, Proposal, static_top
from merchandiser.shopper import UserState

NAME = "popularity"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    segment = items.segment_popularity(user.segments)
    if ask.allowed is None:
        key = next((s for s in user.segments if s in items.signals.segments), NAME)
        return static_top(items, key, segment, ask.k, user.purchased, dense=False)
    return popularity_source(
        segment, ask.k, items.catalog.categories, ask.category, user.purchased, items.tie_rank
    )


def popularity_source(
    popularity: np.ndarray,
    k: int,
    categories: np.ndarray | None = None,
    category: str | None = None,
    exclude: frozenset[int] = frozenset(),
    tie: np.ndarray | None = None,
) -> Proposal:
    rows, scores = top_popular(popularity, k, categories, category, exclude, tie)
    return Proposal(rows, scores)
