"""``trending``: what sells this week (interaction weight with a short half-life)."""

from __future__ import annotations

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, static_top, top_scores
from merchandiser.shopper import UserState

NAME = "trending"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if ask.allowed is None:
        return static_top(items, NAME, items.signals.trending, ask.k, user.purchased, dense=True)
    return top_scores(items.signals.trending, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
