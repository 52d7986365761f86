"""Why an item is on the page: the source's reason, or "because you viewed X" / "bought with X" when the
item is a close co-occurrence neighbour of one of the shopper's latest items."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.reranking.rules import DISCOVERY, NEW_ARRIVAL, PROMOTED, Scored
from merchandiser.retrieval import SOURCE_REASONS
from merchandiser.shopper import UserState

RULE_PLACED = (PROMOTED, NEW_ARRIVAL, DISCOVERY)  # their slot's rule is their reason
RECENT_FOR_REASONS = 10
REASON_NEIGHBOURS = 20  # "because you viewed X": X among the shopper's latest items
REASONS: dict[str, str] = {
    **SOURCE_REASONS,
    "request": "from your list",
    DISCOVERY: "something different for you",
}


def reason(source: str) -> str:
    return REASONS.get(source, source)


def reasons_from_recent(model: ItemModel, state: UserState, page: Sequence[Scored]) -> dict[str, str]:
    """ "because you viewed X" / "bought with X": for a served item that is a co-occurrence neighbour of
    one of the shopper's latest items, the most similar such item names the reason."""
    catalog = model.catalog
    recent = state.recent[:RECENT_FOR_REASONS]
    if not recent:
        return {}
    reasons: dict[str, str] = {}
    for item in page:
        row = catalog.row_of.get(item.item_id)
        if row is None or item.source in RULE_PLACED:
            continue
        best: tuple[float, int, str] | None = None
        for neighbours, verb in (
            (model.signals.bought_together, "bought with"),
            (model.signals.also_viewed, "because you viewed"),
        ):
            for source_row in recent:
                rows, similarity = neighbours.of(source_row)
                # only a close neighbour explains: the strongest REASON_NEIGHBOURS of the recent item
                hits = np.flatnonzero(rows[:REASON_NEIGHBOURS] == row)
                if len(hits) and (best is None or float(similarity[hits[0]]) > best[0]):
                    best = (float(similarity[hits[0]]), source_row, verb)
            if best is not None:
                break  # a basket link explains better than a co-view
        if best is not None:
            reasons[item.item_id] = f"{best[2]} {catalog.titles[best[1]]}"
    return reasons
