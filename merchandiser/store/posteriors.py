"""Exploration posteriors (sessions table): per item, how often it was shown in an exploration slot and
how often it was clicked there. Serving's Thompson sampling draws each new item's click rate from
Beta(1 + clicks, 1 + impressions - clicks); an item whose posterior mean clears a threshold after enough
impressions graduates to a candidate source, one that does not fades (``merchandiser.catalog.exploration``).

{user_id: "#explore#<item_id>", item_id, impressions, clicks, updated_at, expires_at}

Exactly once, whatever the stream redelivers: an impression record counts its exploration items in one
transaction with the conditional creation of its page's record (``explored_pages``), so a replayed page
cancels the whole transaction; a click is credited in one transaction with adding the item to the
page's ``clicked`` set under the condition that it is not there yet, so a replayed click (or a second
click on the same item of the same page) cancels. Clicks never outnumber impressions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.store.dynamo import Tables
from merchandiser.store.explored_pages import ExploredPage, page_key

POSTERIOR_KEY_PREFIX = "#explore#"
# A posterior nobody updates for this long (the item left the pool, was trained on, or was deleted) goes.
POSTERIOR_TTL = timedelta(days=60)
CONDITION_FAILED = "ConditionalCheckFailed"


def posterior_key(item_id: str) -> str:
    return POSTERIOR_KEY_PREFIX + item_id


@dataclass(frozen=True)
class Posterior:
    impressions: int = 0
    clicks: int = 0

    @property
    def alpha(self) -> int:
        return 1 + self.clicks

    @property
    def beta(self) -> int:
        return 1 + max(self.impressions - self.clicks, 0)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def replayed(error: ClientError) -> bool:
    """A cancelled transaction whose only failures are conditions: the write was already done."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    codes = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
    return CONDITION_FAILED in codes and codes <= {CONDITION_FAILED, "None", None}


class Posteriors(Tables):
    def posteriors(self, item_ids: Iterable[str]) -> dict[str, Posterior]:
        """The posteriors of ``item_ids`` that have one (an item never shown in an exploration slot has
        none: Beta(1, 1)); eventually consistent, one BatchGetItem per 100 items."""
        keys = sorted({posterior_key(item_id) for item_id in item_ids})
        found = self._batch_get(self.sessions_table, keys, consistent=False)
        return {
            str(item["user_id"])[len(POSTERIOR_KEY_PREFIX) :]: Posterior(
                int(item.get("impressions", 0)), int(item.get("clicks", 0))
            )
            for item in found.values()
        }

    def count_page(self, page: ExploredPage, now: float) -> bool:
        """Creates the page's record and adds one impression to each of its exploration items, in one
        transaction; False when the page was counted before (a replay)."""
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.sessions_table,
                    "Item": page.to_item(),
                    "ConditionExpression": "attribute_not_exists(user_id)",
                }
            }
        ]
        actions += [self._add(item_id, "impressions", now) for item_id in sorted(page.item_ids)]
        return self._transact(actions)

    def credit_click(self, page: ExploredPage, item_id: str, now: float) -> bool:
        """Adds one click to ``item_id``'s posterior and the item to the page's ``clicked`` set, in one
        transaction; False when the item's click on this page was credited before."""
        mark = {
            "Update": {
                "TableName": self.sessions_table,
                "Key": {"user_id": page_key(page.recommendation_id)},
                "UpdateExpression": "ADD clicked :item",
                "ConditionExpression": "contains(#items, :id) AND NOT contains(clicked, :id)",
                "ExpressionAttributeNames": {"#items": "items"},
                "ExpressionAttributeValues": {":item": {item_id}, ":id": item_id},
            }
        }
        return self._transact([mark, self._add(item_id, "clicks", now)])

    def _add(self, item_id: str, counter: str, now: float) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.sessions_table,
                "Key": {"user_id": posterior_key(item_id)},
                "UpdateExpression": (
                    f"ADD {counter} :one SET item_id = :id, updated_at = :now, expires_at = :ttl"
                ),
                "ExpressionAttributeValues": {
                    ":one": 1,
                    ":id": item_id,
                    ":now": int(now),
                    ":ttl": int(now + POSTERIOR_TTL.total_seconds()),
                },
            }
        }

    def _transact(self, actions: list[dict[str, Any]]) -> bool:
        try:
            self._dynamodb.meta.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if replayed(error):
                return False
            raise
        return True
