"""What a serving container builds once and reuses: the loaded model and the DynamoDB resource.

Built on first use (not at import) so importing a handler never touches files or AWS.

Degrade, never fail: ``load_model`` serves whatever part of a model dir is intact.

- everything intact: the model as trained;
- ranker missing or corrupt: the model without its ranker (``Model.score`` then orders by the ALS
  inner product with a popularity tie-break), fault ``ranker``;
- index, item factors or signals (the co-occurrence sources) missing, corrupt or truncated:
  popularity candidates from the catalog and popularity arrays, fault ``index``;
- manifest, catalog or popularity unusable: nothing of the bundle can be trusted, so the last-resort
  list is served (fault ``model``): in-stock items read from the items table, newest first. The
  items table is chosen over a file in a layer because it is a separate failure domain (a broken
  model layer or a bad deploy does not touch DynamoDB) and it is the live catalogue, not a snapshot
  of whatever shop the layer was built for.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import hnswlib
import lightgbm as lgb
import numpy as np
from botocore.config import Config

from merchandiser import artifacts
from merchandiser.catalog_overlay import OVERLAY_KEY, CatalogOverlay
from merchandiser.fresh_items import with_overlay
from merchandiser.model import Model
from merchandiser.recommend import Recommender
from merchandiser.serving_report import INDEX, MODEL, RANKER
from merchandiser.settings import ServingSettings
from merchandiser.signals import Signals
from merchandiser.store import FeatureStore

logger = logging.getLogger(__name__)

# A page waits for DynamoDB at most about 2 x (connect + read) before it is served without user
# features: the default (60 s, 5 legacy retries) would outlive the function's 10 s timeout.
DYNAMODB_CONFIG = Config(
    connect_timeout=0.3, read_timeout=0.3, retries={"total_max_attempts": 2, "mode": "standard"}
)
LAST_RESORT_ITEMS = 200  # one Scan page: bounded latency on the path that is already failing
LAST_RESORT_TTL_SECONDS = 300.0  # retry the table now and then, never on every request
OVERLAY_TTL_SECONDS = 10.0  # an upserted item is served within this long, one GetItem per period


@dataclass(frozen=True)
class LoadedModel:
    """The model to serve with (None: nothing usable) and the fallbacks its load forced."""

    model: Model | None
    faults: frozenset[str]


@cache
def dynamodb_resource():  # type: ignore[no-untyped-def]
    return boto3.resource("dynamodb", config=DYNAMODB_CONFIG)


@cache
def loaded_model(model_dir: str) -> LoadedModel:
    return load_model(Path(model_dir))


def model(model_dir: str) -> Model:
    """The served model; raises ``BundleError`` when nothing of ``model_dir`` is usable."""
    loaded = loaded_model(model_dir)
    if loaded.model is None:
        raise artifacts.BundleError(f"no usable model in {model_dir}")
    return loaded.model


def load_model(model_dir: Path) -> LoadedModel:
    try:
        return LoadedModel(Model.load(model_dir), frozenset())
    except artifacts.BundleError as error:
        logger.error("model bundle unusable, loading what can be served", extra={"error": str(error)})
    try:
        return _load_intact_parts(model_dir)
    except Exception as error:  # anything at all: the last resort still serves a page
        logger.error("no part of the model can be served", extra={"fallback": MODEL, "error": str(error)})
        return LoadedModel(None, frozenset({MODEL}))


def _load_intact_parts(model_dir: Path) -> LoadedModel:
    """Catalog and popularity are required; index, item factors and ranker are each optional."""
    manifest = artifacts.read_manifest(model_dir)  # not verified as a whole: each part is, below
    listed: dict[str, str] = manifest.get("files", {})

    def intact(name: str) -> Path:
        path = model_dir / name
        if not path.is_file():
            raise artifacts.BundleError(f"{name} is missing")
        if name in listed and artifacts.sha256_of(path) != listed[name]:
            raise artifacts.BundleError(f"{name} does not match its manifest hash")
        return path

    catalog = artifacts.Catalog.load(intact(artifacts.CATALOG))
    popularity = np.load(intact(artifacts.POPULARITY), allow_pickle=False)
    faults: set[str] = set()
    item_factors: np.ndarray = np.zeros((len(catalog), 1), dtype=np.float32)
    index = hnswlib.Index(space="ip", dim=1)
    try:
        factors = np.load(intact(artifacts.ITEM_FACTORS), allow_pickle=False)
        if factors.ndim != 2 or factors.shape[0] != len(catalog):
            raise artifacts.BundleError(f"item factors {factors.shape} for {len(catalog)} items")
        loaded = hnswlib.Index(space="ip", dim=int(factors.shape[1]))
        loaded.load_index(str(intact(artifacts.INDEX)), max_elements=len(catalog))
        item_factors, index = factors, loaded
    except Exception as error:  # missing, corrupt, truncated: popularity candidates instead
        logger.error("index unusable, serving popularity", extra={"fallback": INDEX, "error": str(error)})
        faults.add(INDEX)
        index.init_index(max_elements=1)  # an empty stand-in: Model needs an index object
    signals = None
    if artifacts.SIGNALS in listed:
        try:
            signals = Signals.load(intact(artifacts.SIGNALS))
        except Exception as error:  # the co-occurrence sources are gone: popularity candidates instead
            logger.error(
                "signals unusable, serving popularity", extra={"fallback": INDEX, "error": str(error)}
            )
            faults.add(INDEX)
    ranker = None
    if artifacts.RANKER in listed or (model_dir / artifacts.RANKER).exists():
        try:
            ranker = lgb.Booster(model_file=str(intact(artifacts.RANKER)))
        except Exception as error:
            logger.error("ranker unusable", extra={"fallback": RANKER, "error": str(error)})
            faults.add(RANKER)
    model = Model(manifest, catalog, item_factors, popularity, index, ranker, signals=signals)
    return LoadedModel(model, frozenset(faults))


def last_resort_model(items: list[dict[str, Any]], limit: int = LAST_RESORT_ITEMS) -> Model:
    """A stand-in model over catalogue records: in stock only, newest first (by ``updated_at``)."""
    records = sorted(
        (
            item
            for item in items
            if item.get("in_stock", True) and item.get("item_id") and item["item_id"] != OVERLAY_KEY
        ),
        key=lambda item: (-_epoch(item.get("updated_at")), str(item["item_id"])),
    )[:limit]
    count = len(records)
    catalog = artifacts.Catalog(
        item_ids=np.array([str(r["item_id"]) for r in records], dtype=str),
        titles=np.array([str(r.get("title", r["item_id"])) for r in records], dtype=str),
        categories=np.array([str(r.get("category", "unknown")) for r in records], dtype=str),
        brands=np.array([str(r.get("brand", "")) for r in records], dtype=str),
        prices=np.array([float(r.get("price") or np.nan) for r in records], dtype=np.float64),
        created_at=np.array([float(r.get("created_at") or np.nan) for r in records], dtype=np.float64),
        in_stock=np.ones(count, dtype=bool),
    )
    index = hnswlib.Index(space="ip", dim=1)
    index.init_index(max_elements=1)
    # position as popularity: the first record ranks first
    popularity = np.arange(count, 0, -1, dtype=np.float32)
    manifest = {"model_version": "last-resort"}
    return Model(manifest, catalog, np.zeros((count, 1), dtype=np.float32), popularity, index, None)


def _epoch(value: Any) -> float:
    """``updated_at`` as epoch seconds: a number, or the ISO time the catalogue function writes."""
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            return datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            return 0.0


_last_resort: tuple[float, Model] | None = None
_overlaid: dict[int, tuple[float, tuple[tuple[str, str], ...], Model]] = {}


def with_catalog_overlay(model: Model, items_table: str, clock: Any = time.monotonic) -> Model:
    """``model`` with the catalogue overlay applied (``merchandiser.catalog_overlay``), read at most once
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
    served = cached[2] if cached is not None and cached[1] == fingerprint else with_overlay(model, overlay)
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
