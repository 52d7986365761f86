"""Catalogue upserts (PUT /items/{item_id}) and erasure of a shopper's data (DELETE /users/{user_id})."""

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit

from merchandiser.api import ItemStored, ItemUpsert, UserErased, api_handler, documented, make_resolver
from merchandiser.schemas import ID_PATTERN
from merchandiser.settings import CatalogSettings
from merchandiser.store import (
    ITEM_FIELDS,
    CatalogOverlay,
    FeatureStore,
    OverlayFullError,
    overlay_entry,
    write_tombstone,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()


@cache
def store(settings: CatalogSettings) -> FeatureStore:
    return FeatureStore(
        boto3.resource("dynamodb"), settings.users_table, settings.sessions_table, settings.items_table
    )


@app.put(
    "/items/<item_id>",
    summary="Catalogue upsert",
    description=(
        "Merges the fields given into the item's record in the items table (the catalogue's source of"
        ' truth; a partial update such as {"in_stock": false} keeps the other fields) and into the'
        " catalogue overlay serving applies from the moment this call answers: a new item gets a content"
        " vector and is retrievable without retraining; a known one gets its new stock, price and title;"
        " an item out of stock is served on no surface; `promoted` puts it among the promoted items of every"
        " page until set false. The next training reads the table, so the change"
        " survives it. `retrievable` is false when the overlay is full (the next training serves it)."
    ),
    tags=["catalogue"],
    responses=documented(ItemStored, "stored", 400),
)
def put_item(
    item_id: Annotated[str, Path(pattern=ID_PATTERN)], item: Annotated[ItemUpsert, Body()]
) -> dict[str, Any]:
    settings = CatalogSettings.from_env()
    now = datetime.now(UTC).isoformat()
    catalogue = store(settings)
    record = catalogue.upsert_item(item_id, item.model_dump(exclude_none=True), now)
    try:
        CatalogOverlay(catalogue.table(settings.items_table)).upsert(overlay_entry(record))
        retrievable = True
    except OverlayFullError:
        # stored all the same: the next training serves it; until then it waits
        logger.warning("catalogue overlay full", extra={"item_id": item_id})
        metrics.add_metric(name="OverlayFull", unit=MetricUnit.Count, value=1)
        retrievable = False
    return {
        "item_id": item_id,
        "stored": True,
        "retrievable": retrievable,
        "updated_at": now,
        "revision": int(record["revision"]),
        "item": {name: record[name] for name in ITEM_FIELDS if name in record},
    }


@cache
def s3():  # type: ignore[no-untyped-def]
    return boto3.client("s3")


@app.delete(
    "/users/<user_id>",
    summary="Erase a shopper's data (GDPR)",
    description=(
        "The bound: the profile and session at once (events of the shopper still on the stream are"
        " dropped), the archive (events, impressions, the users channel) within a day by the daily"
        " eraser, every model at the next training. The tombstone names the shopper by the sha256 of"
        " the id."
    ),
    tags=["catalogue"],
    responses=documented(UserErased, "profile and session erased"),
)
def erase_user(user_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> dict[str, Any]:
    settings = CatalogSettings.from_env()
    erased_at = datetime.now(UTC)
    # Tombstone first: if the deletes then fail, the caller retries, and the next training already
    # leaves the shopper out; the other order could train on someone whose profile is gone.
    tombstone = write_tombstone(s3(), settings.artifacts_bucket, user_id, erased_at)
    store(settings).erase_user(user_id, erased_at.timestamp())
    # the log names the erasure by its tombstone (the sha256 of the id): logs outlive an erasure
    logger.info("erased a shopper's profile and session", extra={"tombstone": tombstone})
    return {"user_id": user_id, "erased": True, "erased_at": erased_at.isoformat(), "tombstone": tombstone}


handler = api_handler(app, logger, tracer, metrics)
