"""Writing the model dir (``merchandiser.store.artifacts`` layout) that serving loads and publish ships."""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merchandiser.serving import Model
from merchandiser.store import (
    CATALOG,
    CONTENT_INDEX,
    HALF_LIFE_DAYS,
    HISTORY_AT,
    INDEX,
    ITEM_FACTORS,
    POPULARITY,
    RANKER,
    SIGNALS,
    USER_FEATURES,
    decay_factor,
    sha256_of,
    write_manifest,
)
from training.fit import UserHistory

HISTORY_ITEMS = 200
USER_FEATURES_LEVEL = 6  # gzip level of user_features.jsonl.gz
LIBRARIES = ("numpy", "scipy", "lightgbm", "chroma-hnswlib", "pandas")


def data_fingerprint(files: Iterable[str | Path]) -> str:
    """sha256 over the sha256 of every channel file, in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(str(file) for file in files):
        digest.update(Path(path).name.encode())
        digest.update(sha256_of(Path(path)).encode())
    return digest.hexdigest()


def model_version(created_at: datetime, data_sha256: str, hyperparameters: dict[str, Any]) -> str:
    """UTC timestamp + a short hash of the data and hyperparameters: sortable and traceable."""
    digest = hashlib.sha256((data_sha256 + json.dumps(hyperparameters, sort_keys=True)).encode()).hexdigest()
    return f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest[:8]}"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def user_feature_records(
    histories: dict[str, UserHistory],
    users: pd.DataFrame | None,
    item_ids: np.ndarray,
    raw_history: bool = False,
    histories_at: float | None = None,
    half_life_days: float | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per known user: the heaviest items of their history, their purchases, their attributes;
    with ``raw_history`` (the model serves a personal anchor), the same items' raw weights as well.

    Given ``histories_at`` (the time ``histories`` are decayed to, the manifest's) and ``half_life_days``,
    each history is written decayed to the shopper's latest event instead (``history_at``; its weights
    over ``decay_factor(histories_at, history_at, half_life_days)``): the record then changes only when the
    shopper's events do, not at every training (serving scales it back: ``store.history_at_model``). One
    factor for the whole history: the heaviest items are the same ones, in the same order."""
    attributes: dict[str, dict[str, str]] = {}
    if users is not None:
        columns = [column for column in users.columns if column != "user_id"]
        for record in users[["user_id", *columns]].itertuples(index=False):
            attributes[str(record[0])] = {
                column: str(value) for column, value in zip(columns, record[1:], strict=True)
            }
    ids = [str(item) for item in item_ids.tolist()]  # not a numpy scalar per item of every history
    for user_id in sorted(histories):
        history = histories[user_id]
        heaviest = sorted(history.weights.items(), key=lambda pair: (-pair[1], pair[0]))[:HISTORY_ITEMS]
        factor, stamp = 1.0, {}
        if histories_at is not None and half_life_days:
            # ms, as category_seen: the rounded time is the one both sides decay with
            at = round(histories_at if history.latest is None else history.latest, 3)
            factor = decay_factor(histories_at, at, half_life_days)
            stamp = {HISTORY_AT: at, HALF_LIFE_DAYS: float(half_life_days)}
        record = {
            "user_id": user_id,
            "history": {ids[row]: round(float(weight) / factor, 6) for row, weight in heaviest},
            **stamp,
            "purchased": sorted(ids[row] for row in history.purchased),
            "recent": [ids[row] for row in history.recent],
            "category_seen": {category: round(seen, 3) for category, seen in history.category_seen.items()},
            "attributes": attributes.get(user_id, {}),
        }
        if raw_history:
            record["raw_history"] = {
                ids[row]: round(float(history.raw_weights.get(row, 0.0)), 6) for row, _ in heaviest
            }
        yield record


def write_model_dir(
    model_dir: Path,
    model: Model,
    manifest: dict[str, Any],
    user_features: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """Writes every artifact, then the manifest with their hashes; returns the manifest."""
    model_dir.mkdir(parents=True, exist_ok=True)
    model.items.catalog.save(model_dir / CATALOG)
    np.save(model_dir / ITEM_FACTORS, model.items.item_factors.astype(np.float32))
    np.save(model_dir / POPULARITY, model.items.popularity.astype(np.float32))
    model.items.index.save_index(str(model_dir / INDEX))
    content_index = model_dir / CONTENT_INDEX
    if model.items.content_index is not None:
        model.items.content_index.save_index(str(content_index))
    elif content_index.exists():
        content_index.unlink()  # one left from an earlier run must not be served with new factors
    model.items.signals.save(model_dir / SIGNALS)
    ranker_path = model_dir / RANKER
    if model.ranker is not None:
        model.ranker.save_model(str(ranker_path))
    elif ranker_path.exists():
        ranker_path.unlink()  # a ranker left from an earlier run must not be served with new factors
    # mtime=0: the same users give the same bytes, hence the same hash; zlib's default level, not
    # GzipFile's 9: at 10M interactions level 9 took 66 s for 2% fewer bytes than level 6's 14 s
    with (
        open(model_dir / USER_FEATURES, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=USER_FEATURES_LEVEL) as compressed,
    ):
        for record in user_features:
            compressed.write((json.dumps(record, sort_keys=True) + "\n").encode())
    return write_manifest(model_dir, manifest)
