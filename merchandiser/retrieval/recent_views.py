"""``recent_views``: the shopper's latest items and the items viewed with them (item-to-item from the last
views), so a shopper about to buy what they just looked at finds it, and its closest alternatives."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, top_scores
from merchandiser.shopper import UserState

NAME = "recent_views"
LATEST_ITEMS = 3  # the shopper's latest items that feed it
DECAY = 0.5  # weight of the n-th latest item: DECAY ** n


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if not user.recent:
        return None
    rows = np.array(user.recent[:LATEST_ITEMS], dtype=np.int64)
    weights = DECAY ** np.arange(len(rows))
    dense = items.signals.also_viewed.scores(rows, weights)
    # an item is its own closest neighbour (a cosine is at most 1): the latest items lead the list
    np.add.at(dense, rows, weights)
    return top_scores(dense, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
