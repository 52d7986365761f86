"""The exploration posteriors' side of a batch: impressions of pages with exploration slots count once per
page, clicks on those slots count once per page and item (``merchandiser.store.posteriors``).

An impression record names each item's ``source``: the exploration slots' items say ``new arrival``
(``reranking.NEW_ARRIVAL``). Such a page's record is created in the same transaction that adds one
impression to each of its exploration items, so a replayed impression cancels. A click carrying the
page's ``recommendation_id`` is credited when the page showed the clicked item in an exploration slot, to
the same shopper, within the click window; the page's ``clicked`` set makes a replayed click, or a second
click on the same item of the same page, cancel. Clicks are credited from every click of the batch, new
or duplicate to the session: a click whose credit failed is retried with its record, and finds its
session already holding it.

A write that fails for another reason than a replay reports its record as failed: the event source
mapping sends it again and the conditions make that safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from merchandiser.reranking import NEW_ARRIVAL
from merchandiser.schemas import Event
from merchandiser.store import ExploredPage, FeatureStore, user_hash

logger = logging.getLogger(__name__)


def explored_page(document: dict[str, Any]) -> ExploredPage | None:
    """The exploration part of an impression record: None when no item sat in an exploration slot (or the
    record lacks what a page needs: then it cannot be credited anyway)."""
    items = document.get("items")
    recommendation_id = document.get("recommendation_id")
    if not isinstance(items, list) or not isinstance(recommendation_id, str) or not recommendation_id:
        return None
    explored = frozenset(
        str(item["item_id"])
        for item in items
        if isinstance(item, dict) and item.get("source") == NEW_ARRIVAL and item.get("item_id")
    )
    if not explored:
        return None
    try:
        shown_at = datetime.fromisoformat(str(document.get("timestamp"))).timestamp()
    except ValueError:
        return None
    user_id = document.get("user_id")
    return ExploredPage(recommendation_id, user_hash(str(user_id)) if user_id else None, explored, shown_at)


@dataclass
class ExplorationOutcome:
    pages: int = 0  # pages whose exploration impressions were counted
    replayed_pages: int = 0  # impressions of pages counted before
    clicks: int = 0  # clicks credited to an exploration item
    writes: int = 0  # transactions (one per counted page, one per credited click)
    page_reads: int = 0  # BatchGetItem calls for the clicks' pages
    failed: list[str] = field(default_factory=list)  # sequence numbers to retry


class ExplorationCounter:
    def __init__(self, store: FeatureStore):
        self.store = store

    def count_pages(self, pages: Sequence[tuple[str, ExploredPage]], now: float) -> ExplorationOutcome:
        """``pages``: (sequence number, page) of the batch's impressions with exploration slots."""
        outcome = ExplorationOutcome()
        for sequence_number, page in pages:
            try:
                outcome.writes += 1
                if self.store.count_page(page, now):
                    outcome.pages += 1
                else:
                    outcome.replayed_pages += 1
            except Exception:
                logger.exception("exploration impressions of page %s not counted", page.recommendation_id)
                outcome.failed.append(sequence_number)
        return outcome

    def credit_clicks(
        self,
        clicks: Sequence[tuple[str, Event]],
        known: dict[str, ExploredPage],
        now: float,
        uncounted: frozenset[str] = frozenset(),
    ) -> ExplorationOutcome:
        """``clicks``: (sequence number, click event with a recommendation id); ``known``: the pages this
        batch's impressions counted (the others are read, one BatchGetItem per 100); ``uncounted``: pages
        of this batch whose count failed: their clicks are retried with them."""
        outcome = ExplorationOutcome()
        waiting = [number for number, event in clicks if event.recommendation_id in uncounted]
        outcome.failed.extend(waiting)
        clicks = [(number, event) for number, event in clicks if event.recommendation_id not in uncounted]
        pages = dict(known)
        missing = {event.recommendation_id for _, event in clicks} - set(pages)
        if missing:
            try:
                outcome.page_reads += 1
                pages.update(self.store.explored_pages(sorted(r for r in missing if r)))
            except Exception:
                logger.exception("explored pages unreadable; %d clicks will be retried", len(clicks))
                outcome.failed.extend(sequence_number for sequence_number, _ in clicks)
                return outcome
        for sequence_number, event in clicks:
            page = pages.get(event.recommendation_id or "")
            if page is None or not page.credits(event.item_id, event.user_id, event.timestamp.timestamp()):
                continue
            try:
                outcome.writes += 1
                if self.store.credit_click(page, event.item_id, now):
                    outcome.clicks += 1
            except Exception:
                logger.exception("click on exploration item %s not credited", event.item_id)
                outcome.failed.append(sequence_number)
                continue
            # credited (now or before): a second click on the same item of the page is not another
            pages[page.recommendation_id] = ExploredPage(
                page.recommendation_id,
                page.shopper,
                page.item_ids,
                page.shown_at,
                page.clicked | {event.item_id},
            )
        return outcome
