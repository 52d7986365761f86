"""Publishing a trained model: quality gate against production, then artifacts, user features, pointer.

A model is promoted only when the gate says so; either way the decision and its reasons are written
next to the model (``models/<version>/decision.json``) so every promotion and refusal is on record.
"""

from __future__ import annotations

import gzip
import json
import logging
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from merchandiser import quality_gate
from merchandiser.artifacts import USER_FEATURES, read_manifest
from merchandiser.store import FeatureStore
from merchandiser.training_jobs import MODELS_PREFIX, PRODUCTION_POINTER

logger = logging.getLogger(__name__)


def production_manifest(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=PRODUCTION_POINTER)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    pointer: dict[str, Any] = json.loads(body)
    return pointer["manifest"]


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


def publish(s3: Any, store: FeatureStore, bucket: str, model_dir: Path) -> dict[str, Any]:
    manifest = read_manifest(model_dir, verify=True)
    version = manifest["model_version"]
    decision = quality_gate.decide(manifest, production_manifest(s3, bucket))
    decided_at = datetime.now(UTC).isoformat()
    record = {"model_version": version, "decided_at": decided_at, **decision}
    prefix = f"{MODELS_PREFIX}{version}/"
    s3.put_object(Bucket=bucket, Key=f"{prefix}decision.json", Body=json.dumps(record, indent=2).encode())
    if not decision["promote"]:
        logger.warning("model %s not promoted: %s", version, "; ".join(decision["reasons"]))
        return record
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}{path.name}")
    profiles = store.put_profiles(user_profiles(model_dir), model_version=version)
    pointer = {"model_version": version, "prefix": prefix, "promoted_at": decided_at, "manifest": manifest}
    s3.put_object(Bucket=bucket, Key=PRODUCTION_POINTER, Body=json.dumps(pointer).encode())
    logger.info("model %s promoted; %d shopper profiles loaded", version, profiles)
    return {**record, "profiles_loaded": profiles}
