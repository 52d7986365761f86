"""``also_viewed``: items that co-occur with the shopper's history (item-to-item, shopper level)."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, top_sparse
from merchandiser.shopper import UserState

NAME = "also_viewed"
HISTORY_ITEMS = 100  # the heaviest history items that feed "also viewed"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    history = sorted(user.history.items(), key=lambda pair: (-pair[1], pair[0]))[:HISTORY_ITEMS]
    if not history:
        return None
    rows = np.array([row for row, _ in history], dtype=np.int64)
    weights = np.array([weight for _, weight in history], dtype=np.float64)
    support = items.signals.also_viewed.sparse_scores(rows, weights / weights.sum())
    return top_sparse(support, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
