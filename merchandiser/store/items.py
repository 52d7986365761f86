"""The catalogue overlay: what changed in the catalogue since the model was trained, visible at once.

``PUT /items/{id}`` writes the item to the items table and into one overlay record (``item_id`` =
``OVERLAY_KEY``) that serving reads: an item the model does not know gets a content vector from the
serving model's own attribute regression (``merchandiser.catalog.overlay``), so it is retrieved until the
next training includes it; an item it knows gets its new stock, price and title. The overlay is small
by design (one DynamoDB item, at most ``MAX_ITEMS`` entries): the publish step of the next training
removes the items the new model's catalogue holds (``absorb``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from merchandiser.store.dynamo import Tables, to_dynamo

OVERLAY_KEY = "__catalog_overlay__"
REMOVE_PER_CALL = 100  # attribute names per UpdateExpression, well inside its 4 KB limit
MAX_ITEMS = 1000  # a few hundred bytes each: well inside DynamoDB's 400 KB item limit
UNKNOWN_TIME = float("nan")  # one object: items compare equal when neither time is known


class OverlayFullError(Exception):
    """The overlay holds ``MAX_ITEMS`` items: the next training must absorb them first."""


@dataclass(frozen=True)
class OverlayItem:
    item_id: str
    title: str
    category: str
    brand: str
    price: float
    in_stock: bool
    # when the overlay first held the item (epoch seconds): its "created" time until the next training
    # knows it, so an item added by ``PUT /items`` is a new arrival for exploration; NaN when unknown
    added_at: float = UNKNOWN_TIME

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "title": self.title,
            "category": self.category,
            "brand": self.brand,
            "in_stock": self.in_stock,
        }
        if self.price == self.price:  # not NaN
            record["price"] = Decimal(str(round(self.price, 6)))
        return record

    @classmethod
    def from_record(cls, item_id: str, record: Mapping[str, Any], added_at: Any = None) -> OverlayItem:
        price = record.get("price")
        return cls(
            item_id=item_id,
            title=str(record.get("title", "")),
            category=str(record.get("category", "unknown")),
            brand=str(record.get("brand", "")),
            price=float(price) if price is not None else float("nan"),
            in_stock=bool(record.get("in_stock", True)),
            added_at=float(added_at) if added_at is not None else UNKNOWN_TIME,
        )


class CatalogOverlay:
    """Reads and writes the overlay record in the items table (``table`` is a boto3 Table resource)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def read(self) -> dict[str, OverlayItem]:
        response = self.table.get_item(Key={"item_id": OVERLAY_KEY}, ConsistentRead=False)
        record = response.get("Item", {})
        items: Mapping[str, Any] = record.get("items", {})
        added: Mapping[str, Any] = record.get("added", {})
        return {
            item_id: OverlayItem.from_record(item_id, fields, added.get(item_id))
            for item_id, fields in items.items()
        }

    def upsert(self, item: OverlayItem, now: float | None = None) -> None:
        """One atomic UpdateItem; refuses a new entry once ``MAX_ITEMS`` are held. ``now`` (epoch
        seconds) is kept as the item's ``added_at`` the first time the overlay holds it."""
        from botocore.exceptions import ClientError

        added = "" if now is None else ", #added.#id = if_not_exists(#added.#id, :now)"
        try:
            # a nested SET needs the maps to exist
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression=(
                    "SET #items = if_not_exists(#items, :empty), #added = if_not_exists(#added, :empty)"
                ),
                ExpressionAttributeNames={"#items": "items", "#added": "added"},
                ExpressionAttributeValues={":empty": {}},
            )
            values: dict[str, Any] = {":item": item.to_record(), ":limit": MAX_ITEMS}
            names = {"#items": "items", "#id": item.item_id}
            if now is not None:
                values[":now"] = Decimal(str(round(now, 3)))
                names["#added"] = "added"
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="SET #items.#id = :item" + added,
                # an existing entry may always change; a new one only while there is room
                ConditionExpression="attribute_exists(#items.#id) OR size(#items) < :limit",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise OverlayFullError(f"the catalogue overlay holds {MAX_ITEMS} items") from error
            raise

    def absorb(self, item_ids: Iterable[str]) -> int:
        """Removes the entries of ``item_ids`` (now in the served catalogue); returns how many went."""
        held = set(self.read())
        gone = sorted(held & set(item_ids))
        if gone:  # an overlay written before ``added`` existed has no such map to remove from
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="SET #added = if_not_exists(#added, :empty)",
                ExpressionAttributeNames={"#added": "added"},
                ExpressionAttributeValues={":empty": {}},
            )
        for start in range(0, len(gone), REMOVE_PER_CALL):
            names = {f"#i{n}": item_id for n, item_id in enumerate(gone[start : start + REMOVE_PER_CALL])}
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="REMOVE " + ", ".join(f"#items.{name}, #added.{name}" for name in names),
                ExpressionAttributeNames={"#items": "items", "#added": "added", **names},
            )
        return len(gone)

    def clear(self) -> None:
        self.table.delete_item(Key={"item_id": OVERLAY_KEY})


class ItemRecords(Tables):
    """{item_id, title, category, brand, price, in_stock, created_at, updated_at}: catalogue upserts."""

    def put_item(self, item: Mapping[str, Any]) -> None:
        if self.items_table is None:
            raise ValueError("this store was built without an items table")
        self._dynamodb.Table(self.items_table).put_item(Item=to_dynamo(dict(item)))
