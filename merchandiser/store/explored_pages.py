"""Explored pages (sessions table): which items a served page showed in its exploration slots, so that a
click carrying the page's ``recommendation_id`` can be credited to the item's exploration posterior, once.

{user_id: "#explored#<recommendation_id>", shopper (the sha256 of the id), items: {item ids},
clicked: {item ids}, shown_at, expires_at}: written by the event processor from the page's impression
record (in the same transaction that counts the impressions, ``posteriors.Posteriors.count_page``), read
when a batch holds clicks, and deleted by DynamoDB's TTL once no click can be attributed to the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from merchandiser.store.archive import user_hash
from merchandiser.store.dynamo import Tables

# Like the trending counters, keys no shopper id can take (ids start with a letter or a digit).
EXPLORED_PAGE_KEY_PREFIX = "#explored#"
# A click counts for its page within 24 hours (the experiment report's attribution window); the record
# outlives that by a day for late deliveries of the stream.
CLICK_WINDOW = timedelta(hours=24)
PAGE_TTL = CLICK_WINDOW + timedelta(hours=24)


def page_key(recommendation_id: str) -> str:
    return EXPLORED_PAGE_KEY_PREFIX + recommendation_id


@dataclass(frozen=True)
class ExploredPage:
    recommendation_id: str
    # the sha256 of the id of the shopper the page was served to (a click must come from them): never the
    # id itself, so an erasure leaves nothing of the shopper in these records (README: Erasure)
    shopper: str | None
    item_ids: frozenset[str]  # the items of the page's exploration slots
    shown_at: float  # epoch seconds
    clicked: frozenset[str] = frozenset()  # items whose click is already credited

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "user_id": page_key(self.recommendation_id),
            "items": set(self.item_ids),
            "shown_at": int(self.shown_at),
            "expires_at": int(self.shown_at + PAGE_TTL.total_seconds()),
        }
        if self.shopper:
            item["shopper"] = self.shopper
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ExploredPage:
        return cls(
            recommendation_id=str(item["user_id"])[len(EXPLORED_PAGE_KEY_PREFIX) :],
            shopper=str(item["shopper"]) if item.get("shopper") else None,
            item_ids=frozenset(str(value) for value in item.get("items", ())),
            shown_at=float(item.get("shown_at", 0)),
            clicked=frozenset(str(value) for value in item.get("clicked", ())),
        )

    def credits(self, item_id: str, user_id: str, clicked_at: float) -> bool:
        """Whether a click of ``user_id`` on ``item_id`` at ``clicked_at`` earns the item a click: one of
        the page's exploration items, by the page's shopper, within the window, not credited yet. Clocks
        differ: a click may look up to a few minutes older than its page."""
        return (
            item_id in self.item_ids
            and item_id not in self.clicked
            and (self.shopper is None or self.shopper == user_hash(user_id))
            and -300.0 <= clicked_at - self.shown_at <= CLICK_WINDOW.total_seconds()
        )


class ExploredPages(Tables):
    def explored_pages(self, recommendation_ids: Iterable[str]) -> dict[str, ExploredPage]:
        """The explored pages among ``recommendation_ids`` (a page without exploration items has none),
        read strongly consistent: the page's impression may have been counted by the previous batch."""
        keys = sorted({page_key(recommendation_id) for recommendation_id in recommendation_ids})
        found = self._batch_get(self.sessions_table, keys, consistent=True)
        pages = (ExploredPage.from_item(item) for item in found.values())
        return {page.recommendation_id: page for page in pages}
