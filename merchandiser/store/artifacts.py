"""Model files: what a training job writes to its model dir and serving loads once per container.

Layout of a model dir (every file listed with its sha256 in ``manifest.json``):

- ``manifest.json``        model_version, created_at, library versions, hyperparameters, data window,
                           metrics, file hashes
- ``catalog.npz``          item_ids, titles, categories, brands, prices, created_at (epoch s, NaN unknown),
                           in_stock; row i describes item row i everywhere below
- ``item_factors.npy``     float32 (n_items, dim): ALS item vectors
- ``popularity.npy``       float32 (n_items,): recency-decayed interaction weight
- ``index.bin``            hnswlib inner-product index over item_factors, labels = item rows (every item;
                           only the items with interactions when ``content_index.bin`` exists)
- ``content_index.bin``    hnswlib index over the items placed by their attributes, labels = item rows:
                           written only when they are too many to search exactly (``retrieval.content``)
- ``signals.npz``          trending, co-occurrence neighbours, content regression, segment popularity
                           (``merchandiser.catalog.Signals``)
- ``ranker.txt``           LightGBM LambdaRank model over ``ranking.FEATURE_NAMES`` (optional)
- ``user_features.jsonl.gz`` one JSON object per known user (loaded into DynamoDB on publish,
                           not by serving)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CATALOG = "catalog.npz"
ITEM_FACTORS = "item_factors.npy"
POPULARITY = "popularity.npy"
INDEX = "index.bin"
CONTENT_INDEX = "content_index.bin"
RANKER = "ranker.txt"
SIGNALS = "signals.npz"
USER_FEATURES = "user_features.jsonl.gz"

# What serving reads; the model layer ships only these (shopper features go to DynamoDB, never to a layer).
SERVING_FILES = (MANIFEST, CATALOG, ITEM_FACTORS, POPULARITY, INDEX, RANKER, SIGNALS, CONTENT_INDEX)


class BundleError(Exception):
    """A model dir is missing a file, or a file does not match the manifest."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Adds the hash of every other file in ``model_dir`` and writes ``manifest.json``."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name != MANIFEST)
    full = {**manifest, "files": {p.name: sha256_of(p) for p in files}}
    (model_dir / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
    return full


def read_manifest(
    model_dir: Path, verify: bool | Iterable[str] = False, hashes: bool = True
) -> dict[str, Any]:
    """The manifest; ``verify`` checks that every listed file (True) or only the named ones is present and,
    with ``hashes``, matches its hash (False: the files were checked when they were fetched)."""
    path = model_dir / MANIFEST
    if not path.is_file():
        raise BundleError(f"no {MANIFEST} in {model_dir}")
    manifest: dict[str, Any] = json.loads(path.read_text())
    listed: dict[str, str] = manifest.get("files", {})
    if verify:
        names = listed if verify is True else [name for name in verify if name in listed]
        for name in names:
            expected = listed[name]
            if not (model_dir / name).is_file():
                raise BundleError(f"{name} is listed in the manifest but missing from {model_dir}")
            if hashes and sha256_of(model_dir / name) != expected:
                raise BundleError(f"{name} in {model_dir} does not match its manifest hash")
    return manifest
