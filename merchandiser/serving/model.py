"""The served model: what the training job wrote to a model dir, loaded once per container.

Degrade, never fail: ``load_model`` serves whatever part of a model dir is intact.

- everything intact: the model as trained;
- ranker missing or corrupt: the model without its ranker (``ranking.score`` then orders by the ALS
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import hnswlib
import lightgbm as lgb
import numpy as np

from merchandiser.catalog import LOAD_ERRORS, Catalog, ItemModel, Signals, given_or_loaded
from merchandiser.ranking import RankerError, load_ranker
from merchandiser.serving.report import INDEX, MODEL, RANKER
from merchandiser.store import (
    CATALOG,
    CONTENT_INDEX,
    ITEM_FACTORS,
    POPULARITY,
    RESERVED_ITEM_KEYS,
    SERVING_FILES,
    SIGNALS,
    BundleError,
    read_manifest,
    sha256_of,
)
from merchandiser.store import INDEX as INDEX_FILE
from merchandiser.store import RANKER as RANKER_FILE

logger = logging.getLogger(__name__)

LAST_RESORT_ITEMS = 200  # one Scan page: bounded latency on the path that is already failing


@dataclass(frozen=True)
class Model:
    """What the item-side stages read (``items``) and the ranker (None: order by the ALS score)."""

    items: ItemModel
    ranker: lgb.Booster | None = None
    # items staff promoted through the catalogue overlay, added to the retailer's promoted items
    promoted: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return self.items.version

    @classmethod
    def load(
        cls,
        model_dir: Path,
        mmap: bool = False,
        verified: bool = False,
        indexes: Mapping[str, hnswlib.Index] | None = None,
    ) -> Model:
        """Every part of ``model_dir``, each file checked against its manifest hash (``verified``: they
        were when they were fetched, ``model_source.fetch_model``); ``indexes``: HNSW indexes already
        read, by file name (``model_source.load_into_memory``), whose files are gone."""
        model_dir = Path(model_dir)
        given = indexes or {}
        on_disk = [name for name in SERVING_FILES if name not in given]
        manifest = read_manifest(model_dir, verify=on_disk, hashes=not verified)
        items = ItemModel.load(model_dir, manifest, mmap=mmap, indexes=given)
        try:
            ranker = load_ranker(model_dir / RANKER_FILE) if (model_dir / RANKER_FILE).is_file() else None
        except (*LOAD_ERRORS, RankerError) as error:
            raise BundleError(f"cannot load the ranker in {model_dir}: {error}") from error
        return cls(items, ranker)


@dataclass(frozen=True)
class LoadedModel:
    """The model to serve with (None: nothing usable) and the fallbacks its load forced."""

    model: Model | None
    faults: frozenset[str]


def load_model(
    model_dir: Path,
    mmap: bool = False,
    verified: bool = False,
    indexes: Mapping[str, hnswlib.Index] | None = None,
) -> LoadedModel:
    """The model of ``model_dir``, its derived arrays computed (``ItemModel.warm``): what can be served of
    it when a part is broken, nothing when no part is usable. ``verified``: the files' hashes were checked
    when they were fetched (0.5 s for the 709 MB of a 1M-item model), not again here; ``indexes``: HNSW
    indexes already read, by file name."""
    try:
        model = Model.load(model_dir, mmap=mmap, verified=verified, indexes=indexes)
        model.items.warm()
        return LoadedModel(model, frozenset())
    except BundleError as error:
        logger.error("model bundle unusable, loading what can be served", extra={"error": str(error)})
    try:
        loaded = _load_intact_parts(model_dir, verified, indexes or {})
        if loaded.model is not None:
            loaded.model.items.warm()
        return loaded
    except Exception as error:  # anything at all: the last resort still serves a page
        logger.error("no part of the model can be served", extra={"fallback": MODEL, "error": str(error)})
        return LoadedModel(None, frozenset({MODEL}))


def _load_intact_parts(
    model_dir: Path, verified: bool = False, indexes: Mapping[str, hnswlib.Index] | None = None
) -> LoadedModel:
    """Catalog and popularity are required; index, item factors and ranker are each optional."""
    manifest = read_manifest(model_dir)  # not verified as a whole: each part is, below
    listed: dict[str, str] = manifest.get("files", {})
    given = indexes or {}

    def intact(name: str) -> Path:
        path = model_dir / name
        if name in given:  # read before, its file gone
            return path
        if not path.is_file():
            raise BundleError(f"{name} is missing")
        if not verified and name in listed and sha256_of(path) != listed[name]:
            raise BundleError(f"{name} does not match its manifest hash")
        return path

    catalog = Catalog.load(intact(CATALOG))
    popularity = np.load(intact(POPULARITY), allow_pickle=False)
    faults: set[str] = set()
    item_factors: np.ndarray = np.zeros((len(catalog), 1), dtype=np.float32)
    index = hnswlib.Index(space="ip", dim=1)
    try:
        factors = np.load(intact(ITEM_FACTORS), allow_pickle=False)
        if factors.ndim != 2 or factors.shape[0] != len(catalog):
            raise BundleError(f"item factors {factors.shape} for {len(catalog)} items")
        loaded = given_or_loaded(given, intact(INDEX_FILE), int(factors.shape[1]))
        item_factors, index = factors, loaded
    except Exception as error:  # missing, corrupt, truncated: popularity candidates instead
        logger.error("index unusable, serving popularity", extra={"fallback": INDEX, "error": str(error)})
        faults.add(INDEX)
        index.init_index(max_elements=1)  # an empty stand-in: ItemModel needs an index object
    signals = None
    if SIGNALS in listed:
        try:
            signals = Signals.load(intact(SIGNALS))
        except Exception as error:  # the co-occurrence sources are gone: popularity candidates instead
            logger.error(
                "signals unusable, serving popularity", extra={"fallback": INDEX, "error": str(error)}
            )
            faults.add(INDEX)
    content_index = None
    if CONTENT_INDEX in listed and INDEX not in faults:
        try:
            content_index = given_or_loaded(given, intact(CONTENT_INDEX), int(item_factors.shape[1]))
        except Exception as error:  # the content source searches the placed items exactly instead
            logger.error(
                "content index unusable, searching placed items exactly", extra={"error": str(error)}
            )
    ranker = None
    if RANKER_FILE in listed or (model_dir / RANKER_FILE).exists():
        try:
            ranker = load_ranker(intact(RANKER_FILE))
        except Exception as error:
            logger.error("ranker unusable", extra={"fallback": RANKER, "error": str(error)})
            faults.add(RANKER)
    items = ItemModel(manifest, catalog, item_factors, popularity, index, signals, content_index)
    return LoadedModel(Model(items, ranker), frozenset(faults))


def last_resort_model(records: list[dict[str, Any]], limit: int = LAST_RESORT_ITEMS) -> Model:
    """A stand-in model over catalogue records: in stock only, newest first (by ``updated_at``)."""
    kept = sorted(
        (
            item
            for item in records
            if item.get("in_stock", True)
            and item.get("item_id")
            and item["item_id"] not in RESERVED_ITEM_KEYS
        ),
        key=lambda item: (-_epoch(item.get("updated_at")), str(item["item_id"])),
    )[:limit]
    count = len(kept)
    catalog = Catalog(
        item_ids=np.array([str(r["item_id"]) for r in kept], dtype=str),
        titles=np.array([str(r.get("title", r["item_id"])) for r in kept], dtype=str),
        categories=np.array([str(r.get("category", "unknown")) for r in kept], dtype=str),
        brands=np.array([str(r.get("brand", "")) for r in kept], dtype=str),
        prices=np.array([float(r.get("price") or np.nan) for r in kept], dtype=np.float64),
        created_at=np.array([float(r.get("created_at") or np.nan) for r in kept], dtype=np.float64),
        in_stock=np.ones(count, dtype=bool),
    )
    index = hnswlib.Index(space="ip", dim=1)
    index.init_index(max_elements=1)
    # position as popularity: the first record ranks first
    popularity = np.arange(count, 0, -1, dtype=np.float32)
    manifest = {"model_version": "last-resort"}
    items = ItemModel(manifest, catalog, np.zeros((count, 1), dtype=np.float32), popularity, index)
    return Model(items)


def _epoch(value: Any) -> float:
    """``updated_at`` as epoch seconds: a number, or the ISO time the catalogue function writes."""
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            return datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            return 0.0
