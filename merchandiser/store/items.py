"""The catalogue overlay: what changed in the catalogue since the model was trained, visible at once.

``PUT /items/{id}`` writes the item to the items table and into one overlay record (``item_id`` =
``OVERLAY_KEY``) that serving reads: an item the model does not know gets a content vector from the
serving model's own attribute regression (``merchandiser.catalog.overlay``), so it is retrieved until the
next training includes it; an item it knows gets its new stock, price and title. The overlay is small
by design (one DynamoDB item, at most ``MAX_ITEMS`` entries): the publish step of the next training
removes the items the new model's catalogue holds (``absorb``), except promoted ones. A promoted entry
(``promoted``) puts the item among the retailer's promoted items on every page (``serving.runtime``).
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
    # promoted by staff (PUT /items/{id}): serving adds it to the retailer's promoted items
    promoted: bool = False

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "title": self.title,
            "category": self.category,
            "brand": self.brand,
            "in_stock": self.in_stock,
            "promoted": self.promoted,
        }
        if self.price == self.price:  # not NaN
            record["price"] = Decimal(str(round(self.price, 6)))
        return record

    @classmethod
    def from_record(cls, item_id: str, record: Mapping[str, Any]) -> OverlayItem:
        price = record.get("price")
        return cls(
            item_id=item_id,
            title=str(record.get("title", "")),
            category=str(record.get("category", "unknown")),
            brand=str(record.get("brand", "")),
            price=float(price) if price is not None else float("nan"),
            in_stock=bool(record.get("in_stock", True)),
            promoted=bool(record.get("promoted", False)),
        )


class CatalogOverlay:
    """Reads and writes the overlay record in the items table (``table`` is a boto3 Table resource)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def read(self) -> dict[str, OverlayItem]:
        response = self.table.get_item(Key={"item_id": OVERLAY_KEY}, ConsistentRead=False)
        items: Mapping[str, Any] = response.get("Item", {}).get("items", {})
        return {item_id: OverlayItem.from_record(item_id, record) for item_id, record in items.items()}

    def upsert(self, item: OverlayItem) -> None:
        """One atomic UpdateItem; refuses a new entry once ``MAX_ITEMS`` are held."""
        from botocore.exceptions import ClientError

        try:
            # a nested SET needs the map to exist
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="SET #items = if_not_exists(#items, :empty)",
                ExpressionAttributeNames={"#items": "items"},
                ExpressionAttributeValues={":empty": {}},
            )
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="SET #items.#id = :item",
                # an existing entry may always change; a new one only while there is room
                ConditionExpression="attribute_exists(#items.#id) OR size(#items) < :limit",
                ExpressionAttributeNames={"#items": "items", "#id": item.item_id},
                ExpressionAttributeValues={":item": item.to_record(), ":limit": MAX_ITEMS},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise OverlayFullError(f"the catalogue overlay holds {MAX_ITEMS} items") from error
            raise

    def absorb(self, item_ids: Iterable[str]) -> int:
        """Removes the entries of ``item_ids`` (now in the served catalogue); returns how many went.

        A promoted entry stays: the training catalogue knows nothing of promotions, so the overlay keeps
        the item promoted until staff end it (``promoted: false``), which the next training then absorbs.
        """
        held = {item_id for item_id, item in self.read().items() if not item.promoted}
        gone = sorted(held & set(item_ids))
        for start in range(0, len(gone), REMOVE_PER_CALL):
            names = {f"#i{n}": item_id for n, item_id in enumerate(gone[start : start + REMOVE_PER_CALL])}
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="REMOVE " + ", ".join(f"#items.{name}" for name in names),
                ExpressionAttributeNames={"#items": "items", **names},
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
