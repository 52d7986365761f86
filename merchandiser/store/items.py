"""The catalogue (items table): the retailer's item records, the overlay serving reads, and its version.

The items table is the source of truth of the catalogue. ``PUT /items/{id}`` merges the fields it is
given into the item's record (``ItemRecords.upsert_item``: one UpdateItem, so ``{"in_stock": false}``
alone is a valid update), then copies the merged record into one overlay record (``item_id`` =
``OVERLAY_KEY``) and bumps the catalogue version (``item_id`` = ``CATALOG_VERSION_KEY``). Serving reads the
tiny version item on every request (one strongly consistent read unit) and re-reads the overlay only when
it moved, so a change is served from the moment the PUT answers. An item the model does not know gets a
content vector from the serving model's own attribute regression (``merchandiser.catalog.overlay``); an
item it knows gets its new stock, price and title. The training trigger scans the table into the
``items`` channel (``scan_items``), so every change survives the next training; the publish step then
removes from the overlay the entries the new model's catalogue holds as they are (``absorb``).

``promoted`` (staff, through the console) is a field of the record like the others, but no model's
catalogue holds it: a promoted entry therefore stays in the overlay, and serving adds its item to the
retailer's promoted items on every page (``serving.runtime``), until staff set it false; the publish step
then absorbs the entry like any other (not promoted is what a catalogue without the field says).

Records: {item_id, title?, category?, brand?, price?, in_stock?, promoted?, revision, updated_at,
first_stored_at};
the overlay entry of an item holds the same fields (those ever given) and the revision it copies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.store.dynamo import Tables, to_dynamo

OVERLAY_KEY = "__catalog_overlay__"
CATALOG_VERSION_KEY = "__catalog_version__"
# Keys of the items table that are not items: ``schemas.ID_PATTERN`` makes an item id start with a letter
# or digit, and these start with "_".
RESERVED_ITEM_KEYS = frozenset({OVERLAY_KEY, CATALOG_VERSION_KEY})
ITEM_FIELDS = ("title", "category", "brand", "price", "in_stock", "promoted")
REMOVE_PER_CALL = 100  # attribute names per UpdateExpression, well inside its 4 KB limit
MAX_ITEMS = 1000  # a few hundred bytes each: well inside DynamoDB's 400 KB item limit


class OverlayFullError(Exception):
    """The overlay holds ``MAX_ITEMS`` items: the next training must absorb them first."""


@dataclass(frozen=True)
class OverlayItem:
    """One item's catalogue fields; None is a field never given (a partial record keeps the model's)."""

    item_id: str
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    in_stock: bool | None = None
    revision: int = 0
    # when the catalogue first stored the item (epoch seconds, the record's ``first_stored_at``): a new
    # item is a new arrival for exploration from then; None when unknown
    added_at: float | None = None
    promoted: bool | None = None  # after revision: positional construction keeps its meaning

    def fields(self) -> dict[str, Any]:
        """The fields given, price NaN counted as not given."""
        values = {name: getattr(self, name) for name in ITEM_FIELDS}
        if values["price"] is not None and math.isnan(values["price"]):
            values["price"] = None
        return {name: value for name, value in values.items() if value is not None}

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {**self.fields(), "revision": self.revision}
        if self.added_at is not None:
            record["first_stored_at"] = Decimal(str(round(self.added_at, 3)))
        if "price" in record:
            record["price"] = Decimal(str(round(record["price"], 6)))
        return record

    @classmethod
    def from_record(cls, item_id: str, record: Mapping[str, Any]) -> OverlayItem:
        price, in_stock, promoted = record.get("price"), record.get("in_stock"), record.get("promoted")
        return cls(
            item_id=item_id,
            title=None if record.get("title") is None else str(record["title"]),
            category=None if record.get("category") is None else str(record["category"]),
            brand=None if record.get("brand") is None else str(record["brand"]),
            price=None if price is None else float(price),
            in_stock=None if in_stock is None else bool(in_stock),
            promoted=None if promoted is None else bool(promoted),
            revision=int(record.get("revision", 0)),
            added_at=_epoch(record.get("first_stored_at")),
        )

    def matches(self, held: Mapping[str, Any]) -> bool:
        """Whether ``held`` (e.g. a model's catalogue row) already has every field this entry gives."""
        for name, value in self.fields().items():
            # a catalogue without promotions says not promoted: a promoted entry stays, an ended one goes
            other = held.get(name, False) if name == "promoted" else held.get(name)
            if other is None:
                return False
            if name == "price":
                if not math.isclose(float(other), float(value), rel_tol=1e-9, abs_tol=1e-6):
                    return False
            elif (bool(other) if name in ("in_stock", "promoted") else str(other)) != value:
                return False
        return True


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class CatalogOverlay:
    """Reads and writes the overlay record in the items table (``table`` is a boto3 Table resource)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def read(self, consistent: bool = False) -> dict[str, OverlayItem]:
        response = self.table.get_item(Key={"item_id": OVERLAY_KEY}, ConsistentRead=consistent)
        items: Mapping[str, Any] = response.get("Item", {}).get("items", {})
        return {item_id: OverlayItem.from_record(item_id, record) for item_id, record in items.items()}

    def version(self) -> int:
        """The catalogue version: one strongly consistent read of a tiny item (1 read unit)."""
        response = self.table.get_item(Key={"item_id": CATALOG_VERSION_KEY}, ConsistentRead=True)
        return int(response.get("Item", {}).get("version", 0))

    def upsert(self, item: OverlayItem) -> None:
        """One conditional UpdateItem, then the version bump. An older revision never replaces a newer one
        (two PUTs of one item may reach here out of order); a new entry is refused once ``MAX_ITEMS`` are
        held (``OverlayFullError``)."""
        # a nested SET needs the map to exist
        self.table.update_item(
            Key={"item_id": OVERLAY_KEY},
            UpdateExpression="SET #items = if_not_exists(#items, :empty)",
            ExpressionAttributeNames={"#items": "items"},
            ExpressionAttributeValues={":empty": {}},
        )
        try:
            self.table.update_item(
                Key={"item_id": OVERLAY_KEY},
                UpdateExpression="SET #items.#id = :item",
                # an existing entry may always change; a new one only while there is room
                ConditionExpression="(attribute_exists(#items.#id) OR size(#items) < :limit)"
                " AND (attribute_not_exists(#items.#id.#revision) OR #items.#id.#revision < :revision)",
                ExpressionAttributeNames={"#items": "items", "#id": item.item_id, "#revision": "revision"},
                ExpressionAttributeValues={
                    ":item": item.to_record(),
                    ":limit": MAX_ITEMS,
                    ":revision": item.revision,
                },
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            held = self.read(consistent=True).get(item.item_id)
            if held is None:
                raise OverlayFullError(f"the catalogue overlay holds {MAX_ITEMS} items") from error
            return  # a newer revision is already there: nothing to bump
        self.table.update_item(
            Key={"item_id": CATALOG_VERSION_KEY},
            UpdateExpression="ADD version :one",
            ExpressionAttributeValues={":one": 1},
        )

    def absorb(self, held: Mapping[str, Mapping[str, Any]]) -> int:
        """Removes the entries a new model's catalogue now holds as they are (``held``: item id -> its
        fields in that catalogue); returns how many went. An entry that differs (a PUT after the catalogue
        was exported) stays, and so does one changed since it was read (the removal is conditional on its
        revision): serving keeps applying it until a model holds it."""
        entries = self.read(consistent=True)
        gone = sorted(
            item_id for item_id, entry in entries.items() if item_id in held and entry.matches(held[item_id])
        )
        removed = 0
        for start in range(0, len(gone), REMOVE_PER_CALL):
            chunk = gone[start : start + REMOVE_PER_CALL]
            try:
                self._remove(chunk, entries)
                removed += len(chunk)
            except ClientError as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                for item_id in chunk:  # one of them changed meanwhile: the others still go
                    try:
                        self._remove([item_id], entries)
                        removed += 1
                    except ClientError as single:
                        if _code(single) != "ConditionalCheckFailedException":
                            raise
        if removed:
            self.table.update_item(
                Key={"item_id": CATALOG_VERSION_KEY},
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": 1},
            )
        return removed

    def _remove(self, item_ids: list[str], entries: Mapping[str, OverlayItem]) -> None:
        names: dict[str, str] = {"#items": "items", "#revision": "revision"}
        values: dict[str, Any] = {}
        conditions = []
        for n, item_id in enumerate(item_ids):
            names[f"#i{n}"] = item_id
            values[f":r{n}"] = entries[item_id].revision
            conditions.append(f"#items.#i{n}.#revision = :r{n}")
        self.table.update_item(
            Key={"item_id": OVERLAY_KEY},
            UpdateExpression="REMOVE " + ", ".join(f"#items.#i{n}" for n in range(len(item_ids))),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def clear(self) -> None:
        self.table.delete_item(Key={"item_id": OVERLAY_KEY})


def from_dynamo(value: Any) -> Any:
    """Decimals back to ints or floats (JSON and numpy take neither Decimal nor DynamoDB sets)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [from_dynamo(item) for item in value]
    return value


class ItemRecords(Tables):
    """Catalogue records, merged field by field (``ITEM_FIELDS``) as the retailer updates them."""

    def _items(self) -> Any:
        if self.items_table is None:
            raise ValueError("this store was built without an items table")
        return self._dynamodb.Table(self.items_table)

    def upsert_item(self, item_id: str, fields: Mapping[str, Any], now: str) -> dict[str, Any]:
        """SETs the given fields (the others keep their stored values) in one UpdateItem and returns the
        merged record; ``revision`` counts the updates, ``first_stored_at`` dates a new item."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":now": now, ":one": 1}
        clauses = ["updated_at = :now", "first_stored_at = if_not_exists(first_stored_at, :now)"]
        for number, (name, value) in enumerate(sorted(fields.items())):
            names[f"#f{number}"] = name
            values[f":f{number}"] = to_dynamo(value)
            clauses.append(f"#f{number} = :f{number}")
        response = self._items().update_item(
            Key={"item_id": item_id},
            UpdateExpression="SET " + ", ".join(clauses) + " ADD revision :one",
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            **({"ExpressionAttributeNames": names} if names else {}),
        )
        merged: dict[str, Any] = from_dynamo(response["Attributes"])
        return merged

    def scan_items(self) -> Iterator[dict[str, Any]]:
        """Every item record (the overlay and version items left out), page by page."""
        table = self._items()
        request: dict[str, Any] = {}
        while True:
            page = table.scan(**request)
            for record in page.get("Items", []):
                if record.get("item_id") not in RESERVED_ITEM_KEYS:
                    yield from_dynamo(record)
            if "LastEvaluatedKey" not in page:
                return
            request = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _epoch(value: Any) -> float | None:
    """``first_stored_at`` as epoch seconds: a number (the overlay's), the ISO time of the record, or None."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            return datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            return None


def overlay_entry(record: Mapping[str, Any]) -> OverlayItem:
    """The overlay entry copying an item record (``upsert_item``'s answer)."""
    return OverlayItem.from_record(str(record["item_id"]), record)


def catalogue_fields(rows: Iterable[tuple[str, str, str, str, float, bool]]) -> dict[str, dict[str, Any]]:
    """item id -> its fields, from (item_id, title, category, brand, price, in_stock) rows of a catalogue."""
    return {
        item_id: {"title": title, "category": category, "brand": brand, "price": price, "in_stock": in_stock}
        for item_id, title, category, brand, price, in_stock in rows
    }
