"""What a trained model knows of the items, in memory: catalogue, ALS vectors and their HNSW index,
popularity and the item-side signals; loaded once per container, shared by every stage.

Only data and what is derived from it once per model (the Gram matrix every fold-in needs, the rows
placed by their attributes, popularity percentiles, static orders); the stages' logic lives in them.
"""

from __future__ import annotations

import copy
import zipfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import hnswlib
import numpy as np

from merchandiser.catalog.exploration import Exploration
from merchandiser.catalog.items import Catalog
from merchandiser.catalog.signals import Signals
from merchandiser.store import CATALOG, CONTENT_INDEX, INDEX, ITEM_FACTORS, POPULARITY, SIGNALS, BundleError

REQUIRED_FILES = (CATALOG, ITEM_FACTORS, POPULARITY, INDEX)
LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, IndexError, zipfile.BadZipFile)


class ItemModel:
    manifest: dict[str, Any]
    catalog: Catalog
    version: str

    def __init__(
        self,
        manifest: dict[str, Any],
        catalog: Catalog,
        item_factors: np.ndarray,
        popularity: np.ndarray,
        index: hnswlib.Index,
        signals: Signals | None = None,
        content_index: hnswlib.Index | None = None,
    ) -> None:
        if item_factors.shape[0] != len(catalog) or popularity.shape != (len(catalog),):
            raise BundleError(
                f"catalog has {len(catalog)} items but item_factors {item_factors.shape}"
                f" and popularity {popularity.shape}"
            )
        self.manifest = manifest
        self.catalog = catalog
        self.version = str(manifest.get("model_version", "unversioned"))
        self.item_factors = item_factors
        self.popularity = popularity
        self.index = index
        # the placed items' own index, when they are too many to search exactly (``index`` then holds the
        # items with interactions only)
        self.content_index = content_index
        self.signals = signals if signals is not None else Signals.empty(len(catalog))
        if self.signals.trending.shape != (len(catalog),):
            raise BundleError(f"signals describe {len(self.signals.trending)} items, not {len(catalog)}")
        self.placed_rows = np.flatnonzero(self.signals.placed)
        # what exploration learnt since (``catalog.exploration.with_exploration``): nothing at load
        self.exploration = Exploration.empty(len(catalog))
        self._orders: dict[str, np.ndarray] = {}
        als = manifest.get("als", {})
        self.regularization = float(als.get("regularization", 0.05))
        self.alpha = float(als.get("alpha", 1.0))
        # computed once: every fold-in needs Y'Y (float32 product, then widened: the full float64
        # copies of a 100k-item catalogue cost most of a cold start)
        self.gram = (item_factors.T @ item_factors).astype(np.float64)

    @classmethod
    def load(
        cls,
        model_dir: Path,
        manifest: dict[str, Any],
        mmap: bool = False,
        indexes: Mapping[str, hnswlib.Index] | None = None,
    ) -> ItemModel:
        """Every item-side file of a model dir whose manifest was read (and verified) by the caller;
        ``mmap``: the ``.npy`` arrays memory-mapped read-only (files that never change while served);
        ``indexes``: HNSW indexes already read, by file name (their files then need not be there)."""
        mmap_mode: Literal["r"] | None = "r" if mmap else None
        given = indexes or {}
        for name in REQUIRED_FILES:
            if name not in given and not (model_dir / name).is_file():
                raise BundleError(f"{name} is missing from {model_dir}")
        try:
            catalog = Catalog.load(model_dir / CATALOG)
            item_factors = np.load(model_dir / ITEM_FACTORS, mmap_mode=mmap_mode, allow_pickle=False)
            popularity = np.load(model_dir / POPULARITY, mmap_mode=mmap_mode, allow_pickle=False)
            dim = int(item_factors.shape[1])
            index = given_or_loaded(given, model_dir / INDEX, dim)
            signals = Signals.load(model_dir / SIGNALS) if (model_dir / SIGNALS).is_file() else None
            content_index = None
            if CONTENT_INDEX in given or (model_dir / CONTENT_INDEX).is_file():
                content_index = given_or_loaded(given, model_dir / CONTENT_INDEX, dim)
        except LOAD_ERRORS as error:
            raise BundleError(f"cannot load the model in {model_dir}: {error}") from error
        return cls(manifest, catalog, item_factors, popularity, index, signals, content_index)

    @property
    def overlay_rows(self) -> np.ndarray:
        """Rows the catalogue overlay appended since training (``catalog.overlay``): in no index."""
        added = int(self.manifest.get("overlay_items", 0))
        return np.arange(len(self.catalog) - added, len(self.catalog), dtype=np.int64)

    def warm(self) -> ItemModel:
        """Computes now what the first page would otherwise compute (about 2 s at a million items): during
        a container's init, which SnapStart snapshots and provisioned concurrency runs before traffic."""
        for name in ("tie_rank", "out_of_stock_mask", "in_stock_mask", "popularity_percentile"):
            getattr(self, name)
        if self.content_index is None and len(self.placed_rows):
            _ = self.placed_factors
        return self

    @cached_property
    def placed_factors(self) -> np.ndarray:
        return np.ascontiguousarray(self.item_factors[self.placed_rows], dtype=np.float32)

    @cached_property
    def tie_rank(self) -> np.ndarray:
        """int64 per row: the order that settles equal scores anywhere (retrieval, merge, ranker, page),
        0 first: recent popularity, then the latest interaction, then long-term popularity, then the
        newest item; a hash of the item id only between items none of these tell apart (never the row
        or the id's own order, which follow how the catalogue was loaded)."""
        signals, catalog = self.signals, self.catalog

        def descending(values: np.ndarray) -> np.ndarray:
            values = np.asarray(values, dtype=np.float64)
            return -np.where(np.isnan(values), -np.inf, values)

        order = np.lexsort(
            (
                id_hashes(catalog.item_ids),
                descending(catalog.created_at),
                descending(self.popularity),
                descending(signals.last_seen),
                descending(signals.recent_popularity),
            )
        )
        ranks = np.empty(len(order), dtype=np.int64)
        ranks[order] = np.arange(len(order), dtype=np.int64)
        return ranks

    @cached_property
    def out_of_stock(self) -> frozenset[int]:
        """Rows of the items out of stock: never served, on any surface."""
        return frozenset(np.flatnonzero(~self.catalog.in_stock.astype(bool)).tolist())

    @cached_property
    def out_of_stock_mask(self) -> np.ndarray | None:
        """Per row, out of stock or not; None when every item is in stock."""
        return ~self.catalog.in_stock.astype(bool) if self.out_of_stock else None

    @cached_property
    def in_stock_mask(self) -> np.ndarray | None:
        """Per row, in stock or not; None when every item is (no filter to apply)."""
        return self.catalog.in_stock.astype(bool) if self.out_of_stock else None

    @cached_property
    def popularity_percentile(self) -> np.ndarray:
        """Each item's popularity rank over the catalogue size: 0 the least, near 1 the most popular."""
        ranks = np.empty(len(self.popularity), dtype=np.float64)
        ranks[np.argsort(self.popularity, kind="stable")] = np.arange(len(self.popularity))
        return ranks / max(len(self.popularity), 1)

    def segment_popularity(self, segments: Sequence[str]) -> np.ndarray:
        """Popularity among the shopper's first known segment, overall popularity otherwise."""
        for key in segments:
            if key in self.signals.segments:
                return self.signals.segments[key]
        return self.popularity

    def static_order(self, key: str, scores: np.ndarray) -> np.ndarray:
        """Rows with a positive score, best first (ties: ``tie_rank``), sorted once per model and key."""
        order = self._orders.get(key)
        if order is None:
            positive = np.flatnonzero(scores > 0)
            order = positive[np.lexsort((self.tie_rank[positive], -scores[positive]))]
            self._orders[key] = order
        return order

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Rows of known ids (unknown ones skipped)."""
        row_of = self.catalog.row_of
        return np.array([row_of[item] for item in item_ids if item in row_of], dtype=np.int64)


def load_index(path: Path, dim: int) -> hnswlib.Index:
    """An inner-product index file, sized as saved (the serving functions never add items to it)."""
    index = hnswlib.Index(space="ip", dim=dim)
    index.load_index(str(path))
    return index


def given_or_loaded(given: Mapping[str, hnswlib.Index], path: Path, dim: int) -> hnswlib.Index:
    """The index read earlier under ``path``'s name (checked against ``dim``), else the file's."""
    if path.name not in given:
        return load_index(path, dim)
    if given[path.name].dim != dim:
        raise ValueError(f"{path.name} holds {given[path.name].dim}-dimensional vectors, the items {dim}")
    return given[path.name]


def id_hashes(item_ids: np.ndarray) -> np.ndarray:
    """uint64 per id: a polynomial hash of its UTF-8 bytes, the same in every process (``hash()`` is
    salted per process) and vectorized (a cold start must not loop over 100,000 ids)."""
    if len(item_ids) == 0:
        return np.empty(0, dtype=np.uint64)
    ids = np.asarray(item_ids, dtype=str)
    codes = ids.view(np.uint32).reshape(len(ids), -1)  # code points, zero-padded to the widest id
    if int(codes.max(initial=0)) < 0x80:  # ASCII: the code points are the UTF-8 bytes (no re-encoding)
        data = codes.astype(np.uint64)
    else:
        encoded = np.char.encode(ids, "utf-8")
        width = max(encoded.dtype.itemsize, 1)
        data = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(len(ids), width).astype(np.uint64)
    width = data.shape[1]
    hashes = np.full(len(item_ids), np.uint64(1469598103934665603))
    prime = np.uint64(1099511628211)
    with np.errstate(over="ignore"):
        for column in range(width):
            hashes = (hashes ^ data[:, column]) * prime
    return hashes


def with_exploration(model: ItemModel, exploration: Exploration) -> ItemModel:
    """``model`` with ``exploration`` attached (``catalog.exploration``): a shallow copy sharing every
    array, index and derived matrix (a new ``ItemModel`` would recompute the Gram matrix on every
    posterior refresh)."""
    if len(exploration.impressions) != len(model.catalog):
        raise ValueError(f"exploration of {len(exploration.impressions)} rows for {len(model.catalog)} items")
    explored = copy.copy(model)
    explored.exploration = exploration
    return explored
