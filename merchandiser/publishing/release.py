"""Publishing a trained model: quality gate against production, then artifacts, user features, pointer.

A model is promoted only when the gate says so; either way the decision and its reasons are written
next to the model (``models/<version>/decision.json``) so every promotion and refusal is on record.

In AWS a promotion also swaps the served model (``model_swap.ModelSwap``): the model layer zip is
uploaded next to the model, published as a new layer version and each serving function's ``live``
alias is moved to a new version using it. The pointer ``models/production.json`` is written last
and keeps the pointer it replaces (``previous``), which is what ``rollback`` restores.
"""

from __future__ import annotations

import gzip
import json
import logging
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.catalog import Catalog
from merchandiser.publishing.gate import decide
from merchandiser.publishing.swap import LAYER_ZIP, FunctionSwitch, ModelSwap, zip_model_layer
from merchandiser.store import (
    CATALOG,
    MODELS_PREFIX,
    PRODUCTION_POINTER,
    USER_FEATURES,
    CatalogOverlay,
    FeatureStore,
    decision_key,
    read_manifest,
)

logger = logging.getLogger(__name__)


class NothingToRollBackError(RuntimeError):
    """The production pointer records no earlier model to go back to."""


def production_pointer(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=PRODUCTION_POINTER)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    pointer: dict[str, Any] = json.loads(body)
    return pointer


def production_manifest(s3: Any, bucket: str) -> dict[str, Any] | None:
    pointer = production_pointer(s3, bucket)
    return None if pointer is None else pointer["manifest"]


def user_profiles(model_dir: Path) -> Iterator[dict[str, Any]]:
    path = model_dir / USER_FEATURES
    if not path.is_file():
        return
    with gzip.open(path, "rt") as lines:
        for line in lines:
            yield json.loads(line)


def unpack(archive: Path, into: Path) -> Path:
    """SageMaker packs SM_MODEL_DIR as model.tar.gz; refuse members that escape the target."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    return into


def publish(
    s3: Any, store: FeatureStore, bucket: str, model_dir: Path, swap: ModelSwap | None = None
) -> dict[str, Any]:
    """``swap``: how to switch the serving functions to the model (None: only the S3 pointer moves,
    as in the local twin, which repoints the functions' model dir itself)."""
    manifest = read_manifest(model_dir, verify=True)
    version = manifest["model_version"]
    current = production_pointer(s3, bucket)
    decision = decide(manifest, None if current is None else current["manifest"])
    decided_at = datetime.now(UTC).isoformat()
    record = {"model_version": version, "decided_at": decided_at, **decision}
    prefix = f"{MODELS_PREFIX}{version}/"
    s3.put_object(Bucket=bucket, Key=decision_key(version), Body=json.dumps(record, indent=2).encode())
    if not decision["promote"]:
        logger.warning("model %s not promoted: %s", version, "; ".join(decision["reasons"]))
        return record
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}{path.name}")
    profiles = store.put_profiles(user_profiles(model_dir), model_version=version)
    pointer: dict[str, Any] = {
        "model_version": version,
        "prefix": prefix,
        "promoted_at": decided_at,
        "manifest": manifest,
    }
    if swap is not None:
        with TemporaryDirectory() as work:
            s3.upload_file(
                str(zip_model_layer(model_dir, Path(work) / LAYER_ZIP)), bucket, f"{prefix}{LAYER_ZIP}"
            )
        pointer["swap"] = swap.apply(bucket, f"{prefix}{LAYER_ZIP}", version)
    if current is not None:
        current.pop("previous", None)  # one step of history: enough to undo the last promotion
        pointer["previous"] = current
    s3.put_object(Bucket=bucket, Key=PRODUCTION_POINTER, Body=json.dumps(pointer).encode())
    absorbed = 0
    if store.items_table is not None:
        # items the new catalogue holds leave the overlay: the model now serves them itself
        catalog = Catalog.load(model_dir / CATALOG)
        absorbed = CatalogOverlay(store.table(store.items_table)).absorb(catalog.item_ids.tolist())
    logger.info("model %s promoted; %d shopper profiles loaded", version, profiles)
    return {**record, "profiles_loaded": profiles, "overlay_absorbed": absorbed, "swap": pointer.get("swap")}


def rollback(s3: Any, bucket: str, swap: ModelSwap) -> dict[str, Any]:
    """Undoes the last promotion: every alias back to its previous version, the previous pointer back.

    Shopper profiles stay as the newer model wrote them: they are keyed by item id, which both models
    understand, and the next training rewrites them.
    """
    pointer = production_pointer(s3, bucket)
    if pointer is None or "previous" not in pointer or "swap" not in pointer:
        raise NothingToRollBackError("the production pointer records no swap to undo")
    switches = [FunctionSwitch(**switch) for switch in pointer["swap"]["functions"]]
    swap.rollback(switches)
    previous = pointer["previous"]
    s3.put_object(Bucket=bucket, Key=PRODUCTION_POINTER, Body=json.dumps(previous).encode())
    logger.warning("model %s rolled back to %s", pointer["model_version"], previous["model_version"])
    return {
        "rolled_back": pointer["model_version"],
        "model_version": previous["model_version"],
        "functions": {switch.function_name: switch.previous_version for switch in switches},
    }
