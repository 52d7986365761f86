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
from merchandiser.settings import ServingSettings
from merchandiser.store import BundleError, CatalogOverlay, FeatureStore, dynamodb_resource

logger = logging.getLogger(__name__)

LAST_RESORT_TTL_SECONDS = 300.0  # retry the table now and then, never on every request
MODELS_OVERLAID = 8


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
# id of a loaded model -> (the catalogue version its overlay was read at, the model with it applied)
_overlaid: dict[int, tuple[int, Model]] = {}


def with_catalog_overlay(model: Model, items_table: str) -> Model:
    """``model`` with the catalogue overlay applied (``merchandiser.store.items``).

    Every request reads the catalogue version (one strongly consistent read of a tiny item) and the
    overlay only when the version moved, so an item changed by ``PUT /items`` (sold out, renamed, new)
    is served as changed from the moment the PUT answers, in every container. An unreadable version or
    overlay keeps what this container served before.
    """
    cached = _overlaid.get(id(model))
    overlay = CatalogOverlay(dynamodb_resource().Table(items_table))
    try:
        version = overlay.version()
        if cached is not None and cached[0] == version:
            return cached[1]
        entries = overlay.read(consistent=True)
    except Exception as error:  # new items wait; the page must not
        logger.warning("catalogue overlay unreadable", extra={"error": str(error)})
        return cached[1] if cached is not None else model
    items = with_overlay(model.items, entries)
    served = model if items is model.items else Model(items, model.ranker)
    if len(_overlaid) >= MODELS_OVERLAID:  # the last-resort model is rebuilt every few minutes
        _overlaid.clear()
    _overlaid[id(model)] = (version, served)
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
            model=with_catalog_overlay(last_resort(settings.items_table), settings.items_table),
            store=store,
            faults=loaded.faults,
            merchandising=settings.merchandising,
        )
    return Recommender(
        model=with_catalog_overlay(loaded.model, settings.items_table),
        store=store,
        faults=loaded.faults,
        merchandising=settings.merchandising,
    )


def reset() -> None:
    """Forgets everything built so far (tests, and the twin after it swaps a model)."""
    global _last_resort
    loaded_model.cache_clear()
    dynamodb_resource.cache_clear()
    _last_resort = None
    _overlaid.clear()
