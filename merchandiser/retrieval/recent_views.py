"""``recent_views``: the shopper's latest items and the items viewed with them (item-to-item from the last
views), so a shopper about to buy what they just looked at finds it, and its closest alternatives."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel, sum_by_row
from merchandiser.retrieval.proposal import Ask, Proposal, top_sparse
from merchandiser.shopper import UserState

NAME = "recent_views"
LATEST_ITEMS = 3  # the shopper's latest items that feed it
DECAY = 0.5  # weight of the n-th latest item: DECAY ** n


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if not user.recent:
        return None
    rows = np.array(user.recent[:LATEST_ITEMS], dtype=np.int64)
    weights = DECAY ** np.arange(len(rows))
    neighbours, scores = items.signals.also_viewed.sparse_scores(rows, weights)
    # an item is its own closest neighbour (a cosine is at most 1): the latest items lead the list
    support = sum_by_row(np.concatenate([neighbours, rows]), np.concatenate([scores, weights]))
    return top_sparse(support, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
