"""``recent_popularity``: the best sellers with the recency half-life the training job tuned for the shop
(hours on a shop of fast trends, weeks on a shop of steady repeat purchases)."""

from __future__ import annotations

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, static_top, top_scores
from merchandiser.shopper import UserState

NAME = "recent_popularity"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    scores = items.signals.recent_popularity
    if ask.allowed is None:
        return static_top(items, NAME, scores, ask.k, user.purchased, dense=True)
    return top_scores(scores, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
