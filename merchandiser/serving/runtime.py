"""What a serving container builds once and reuses: the loaded model (with the catalogue overlay) and
the DynamoDB resource.

Built on first use (not at import) so importing a handler never touches files or AWS.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from pathlib import Path
from typing import Any

from merchandiser.catalog import with_overlay
from merchandiser.serving.model import LAST_RESORT_ITEMS, LoadedModel, Model, last_resort_model, load_model
from merchandiser.serving.recommender import Recommender
from merchandiser.settings import RetailerRules, ServingSettings
from merchandiser.store import BundleError, CatalogOverlay, FeatureStore, dynamodb_resource

logger = logging.getLogger(__name__)

LAST_RESORT_TTL_SECONDS = 300.0  # retry the table now and then, never on every request
OVERLAY_TTL_SECONDS = 10.0  # an upserted item is served within this long, one GetItem per period
MAX_PROMOTED = 100  # RuleOptions.promoted_item_ids' own limit


@cache
def s3_client():  # type: ignore[no-untyped-def]
    """For the staff routes' small reads (gate decision, KPIs); built on first use."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2})
    )


@cache
def loaded_model(model_dir: str) -> LoadedModel:
    return load_model(Path(model_dir))


def model(model_dir: str) -> Model:
    """The served model; raises ``BundleError`` when nothing of ``model_dir`` is usable."""
    loaded = loaded_model(model_dir)
    if loaded.model is None:
        raise BundleError(f"no usable model in {model_dir}")
    return loaded.model


_last_resort: tuple[float, Model] | None = None
_overlaid: dict[int, tuple[float, tuple[tuple[str, str], ...], Model]] = {}


def with_catalog_overlay(model: Model, items_table: str, clock: Any = time.monotonic) -> Model:
    """``model`` with the catalogue overlay applied (``merchandiser.store.items``), read at most once
    per ``OVERLAY_TTL_SECONDS`` per container; an unreadable overlay keeps what was served before."""
    now = clock()
    cached = _overlaid.get(id(model))
    if cached is not None and now - cached[0] < OVERLAY_TTL_SECONDS:
        return cached[2]
    try:
        overlay = CatalogOverlay(dynamodb_resource().Table(items_table)).read()
    except Exception as error:  # new items wait; the page must not
        logger.warning("catalogue overlay unreadable", extra={"error": str(error)})
        return cached[2] if cached is not None else model
    fingerprint = tuple(sorted((item_id, repr(item.to_record())) for item_id, item in overlay.items()))
    if cached is not None and cached[1] == fingerprint:
        served = cached[2]
    else:
        items = with_overlay(model.items, overlay)
        promoted = tuple(sorted(item_id for item_id, item in overlay.items() if item.promoted))
        served = model if items is model.items and not promoted else Model(items, model.ranker, promoted)
    _overlaid[id(model)] = (now, fingerprint, served)
    return served


def last_resort(items_table: str, clock: Any = time.monotonic) -> Model:
    """The last-resort model, from one bounded Scan of the items table; an empty model if that fails too."""
    global _last_resort
    now = clock()
    if _last_resort is not None and now - _last_resort[0] < LAST_RESORT_TTL_SECONDS:
        return _last_resort[1]
    try:
        page = dynamodb_resource().Table(items_table).scan(Limit=LAST_RESORT_ITEMS)
        items: list[dict[str, Any]] = page.get("Items", [])
    except Exception as error:
        logger.error("items table unavailable for the last-resort list", extra={"error": str(error)})
        items = []
    _last_resort = (now, last_resort_model(items))
    return _last_resort[1]


def recommender(settings: ServingSettings) -> Recommender:
    store = FeatureStore(
        dynamodb_resource(), settings.users_table, settings.sessions_table, settings.items_table
    )
    loaded = loaded_model(settings.model_dir)
    if loaded.model is None:
        return Recommender(
            model=last_resort(settings.items_table),
            store=store,
            faults=loaded.faults,
            merchandising=settings.merchandising,
        )
    served = with_catalog_overlay(loaded.model, settings.items_table)
    return Recommender(
        model=served,
        store=store,
        faults=loaded.faults,
        merchandising=with_promotions(settings.merchandising, served.promoted),
    )


def with_promotions(rules: RetailerRules, promoted: tuple[str, ...]) -> RetailerRules:
    """The retailer's rules with the items staff promoted after its own (at most ``MAX_PROMOTED``)."""
    if not promoted:
        return rules
    merged = tuple(dict.fromkeys((*rules.promoted_item_ids, *promoted)))[:MAX_PROMOTED]
    return rules.model_copy(update={"promoted_item_ids": merged})


def reset() -> None:
    """Forgets everything built so far (tests, and the twin after it swaps a model)."""
    global _last_resort
    loaded_model.cache_clear()
    dynamodb_resource.cache_clear()
    s3_client.cache_clear()
    _last_resort = None
    _overlaid.clear()
