"""``bought_together``: items bought in the same baskets as the shopper's most recent items."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, top_sparse
from merchandiser.shopper import UserState

NAME = "bought_together"
RECENT_ITEMS = 5  # the most recent items whose baskets feed "bought together"
RECENT_DECAY = 0.7  # weight of the n-th most recent item: RECENT_DECAY ** n


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if not user.recent:
        return None
    rows = np.array(user.recent[:RECENT_ITEMS], dtype=np.int64)
    support = items.signals.bought_together.sparse_scores(rows, RECENT_DECAY ** np.arange(len(rows)))
    return top_sparse(support, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
