"""``graduated``: new items that earned their place in exploration slots (``catalog.exploration``: enough
impressions, a posterior click rate over the threshold), proposed to every shopper by that rate until the
next training learns them from their interactions like any other item."""

from __future__ import annotations

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, best_of
from merchandiser.shopper import UserState

NAME = "graduated"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    exploration = items.exploration
    rows = exploration.graduated_rows
    if ask.allowed is not None:
        rows = rows[ask.allowed[rows]]
    if not len(rows):
        return None
    return best_of(rows, exploration.mean[rows], ask.k, user.purchased)
