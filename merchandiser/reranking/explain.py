"""Why an item is on the page: the source's reason, or "because you viewed X" / "bought with X" when the
item is a close co-occurrence neighbour of one of the shopper's latest items."""

from __future__ import annotations

from collections.abc import Sequence

from merchandiser.catalog import ItemModel, Neighbours
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
    # Each link table read once per page (not once per served item: that was a third of the handler's
    # Python time at 100k items); a basket link explains better than a co-view.
    links = (
        (_closest_links(model.signals.bought_together, recent), "bought with"),
        (_closest_links(model.signals.also_viewed, recent), "because you viewed"),
    )
    reasons: dict[str, str] = {}
    for item in page:
        row = catalog.row_of.get(item.item_id)
        if row is None or item.source in RULE_PLACED:
            continue
        for closest, verb in links:
            if row in closest:
                reasons[item.item_id] = f"{verb} {catalog.titles[closest[row][1]]}"
                break
    return reasons


def _closest_links(neighbours: Neighbours, recent: Sequence[int]) -> dict[int, tuple[float, int]]:
    """Item row -> (similarity, recent row) of the most similar recent item it is a close neighbour of (among
    that item's strongest REASON_NEIGHBOURS); on equal similarity the more recent item."""
    closest: dict[int, tuple[float, int]] = {}
    for source_row in recent:
        rows, similarity = neighbours.of(source_row)
        for row, value in zip(
            rows[:REASON_NEIGHBOURS].tolist(), similarity[:REASON_NEIGHBOURS].tolist(), strict=True
        ):
            if row not in closest or value > closest[row][0]:
                closest[row] = (value, source_row)
    return closest
