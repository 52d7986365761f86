"""``content``: items placed in the ALS space by their attributes (no interactions yet), searched exactly."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, best_of
from merchandiser.shopper import UserState

NAME = "content"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if user.vector is None or not len(items.placed_rows):
        return None
    # exact search over the items placed by their attributes (a small set)
    placed, vectors = items.placed_rows, items.placed_factors
    if ask.allowed is not None:
        keep = ask.allowed[placed]
        placed, vectors = placed[keep], vectors[keep]
    scores = vectors @ user.vector.astype(np.float32)
    return best_of(placed, scores, ask.k, user.purchased, tie=items.tie_rank)
