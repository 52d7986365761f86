"""Publishing a trained model: quality gate against production, then artifacts, user features, pointer.

A model is promoted only when the gate says so; either way the decision and its reasons are written
next to the model (``models/<version>/decision.json``) so every promotion and refusal is on record.

A promotion uploads the model's files under ``models/<version>/`` (where serving fetches them), sets the
live-model SSM parameter to the version, and in AWS starts the canary (``canary.ModelCanary``): new
versions of the serving functions, which load the model the parameter names, behind their ``live``
aliases by CodeDeploy. The pointer ``models/production.json`` is written last and keeps the pointer it
replaces (``previous``), which is what ``rollback`` restores, parameter included.
"""

from __future__ import annotations

import gzip
import json
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.catalog import Catalog
from merchandiser.publishing.canary import FunctionSwitch, ModelCanary, SwapError
from merchandiser.publishing.gate import MIN_IMPRESSIONS, decide
from merchandiser.store import (
    CATALOG,
    MODELS_PREFIX,
    PRODUCTION_POINTER,
    TOMBSTONES_PREFIX,
    USER_FEATURES,
    CatalogOverlay,
    FeatureStore,
    catalogue_fields,
    decision_key,
    read_manifest,
    user_hash,
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


@dataclass(frozen=True)
class LiveModel:
    """The SSM parameter serving reads the live model version from (``ssm``: a boto3 SSM client)."""

    ssm: Any
    parameter: str

    def set(self, version: str) -> None:
        self.ssm.put_parameter(Name=self.parameter, Value=version, Type="String", Overwrite=True)


def publish(
    s3: Any,
    store: FeatureStore,
    bucket: str,
    model_dir: Path,
    canary: ModelCanary | None = None,
    live: LiveModel | None = None,
    min_impressions: int = MIN_IMPRESSIONS,
    scan_page_limit: int | None = None,
) -> dict[str, Any]:
    """``live``: the parameter to set (None: only the S3 pointer moves); ``canary``: how the serving
    functions move to the model (None: the local twin, which has no CodeDeploy, reloads them itself);
    ``min_impressions``: from how many logged pages the counterfactual estimate decides (``gate.decide``);
    ``scan_page_limit``: items per page of the Scan of the stored digests (None: DynamoDB's 1 MB pages).

    Shopper profiles: only those whose content differs from the stored one are written (a parallel Scan
    reads the digest of every stored profile first, ``DIGEST_SCAN_SEGMENTS`` segments at once; a profile
    with no stored digest, never written or deleted by an erasure, counts as changed). A profile changes
    only when its shopper's events do (training writes each history decayed to the shopper's latest
    event). An unchanged row keeps the ``model_version`` stamp of the publish that wrote it (serving reads
    no stamp). The profiles of shoppers erased after the training are left out whatever their digest, as
    before; profiles of shoppers no longer in the training window stay in the table as the last publish
    wrote them (nothing is deleted)."""
    manifest = read_manifest(model_dir, verify=True)
    version = manifest["model_version"]
    current = production_pointer(s3, bucket)
    decision = decide(manifest, current, min_impressions=min_impressions)
    decided_at = datetime.now(UTC).isoformat()
    record = {"model_version": version, "decided_at": decided_at, **decision}
    prefix = f"{MODELS_PREFIX}{version}/"
    s3.put_object(Bucket=bucket, Key=decision_key(version), Body=json.dumps(record, indent=2).encode())
    if not decision["promote"]:
        logger.warning("model %s not promoted: %s", version, "; ".join(decision["reasons"]))
        return record
    for path in sorted(model_dir.iterdir()):
        # shopper features go to DynamoDB, never to the bucket: no copy outlives an erasure there
        if path.is_file() and path.name != USER_FEATURES:
            s3.upload_file(str(path), bucket, f"{prefix}{path.name}")
    erased = erased_since(s3, bucket, manifest.get("data", {}).get("channels", {}).get("tombstones_until"))
    skipped = 0

    def kept(profiles: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal skipped
        for profile in profiles:
            if erased and user_hash(str(profile["user_id"])) in erased:
                skipped += 1
            else:
                yield profile

    stored = store.profile_digests(page_limit=scan_page_limit)
    profiles = store.put_profiles(kept(user_profiles(model_dir)), model_version=version, stored=stored)
    del stored  # 16 bytes a stored profile (Shoppers.profile_digests): not held past the writes
    pointer: dict[str, Any] = {
        "model_version": version,
        "prefix": prefix,
        "promoted_at": decided_at,
        "manifest": manifest,
        "gate": {"drift": decision.get("drift", 0.0), "evidence": decision.get("evidence")},
    }
    if live is not None:
        live.set(version)  # before the canary: its new function versions load what the parameter names
    if canary is not None:
        try:
            pointer["swap"] = canary.apply(version)
        except SwapError:
            if live is not None and current is not None:
                live.set(current["model_version"])
            raise
    if current is not None:
        current.pop("previous", None)  # one step of history: enough to undo the last promotion
        pointer["previous"] = current
    s3.put_object(Bucket=bucket, Key=PRODUCTION_POINTER, Body=json.dumps(pointer).encode())
    absorbed = 0
    if store.items_table is not None:
        # overlay entries the new catalogue holds as they are leave the overlay: the model serves them itself
        catalog = Catalog.load(model_dir / CATALOG)
        held = catalogue_fields(
            zip(
                catalog.item_ids.tolist(),
                catalog.titles.tolist(),
                catalog.categories.tolist(),
                catalog.brands.tolist(),
                catalog.prices.tolist(),
                catalog.in_stock.tolist(),
                strict=True,
            )
        )
        absorbed = CatalogOverlay(store.table(store.items_table)).absorb(held)
    logger.info(
        "model %s promoted; %d shopper profiles written, %d unchanged, %d erased left out",
        version,
        profiles.written,
        profiles.unchanged,
        skipped,
    )
    return {
        **record,
        "profiles_loaded": profiles.written,
        "profiles_unchanged": profiles.unchanged,
        "profiles_erased": skipped,
        "overlay_absorbed": absorbed,
        "swap": pointer.get("swap"),
    }


def erased_since(s3: Any, bucket: str, until: str | None) -> frozenset[str]:
    """sha256 of the shoppers whose tombstone was written after ``until``, the latest erasure a model was
    trained with (None: every tombstone): that model's profiles of them predate their erasure."""
    cutoff = None if until is None else datetime.fromisoformat(until)
    erased = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=TOMBSTONES_PREFIX):
        for entry in page.get("Contents", []):
            name = entry["Key"].rsplit("/", 1)[-1]
            if name.endswith(".json") and (cutoff is None or entry["LastModified"] >= cutoff):
                erased.add(name.removesuffix(".json"))
    return frozenset(erased)


def rollback(s3: Any, bucket: str, canary: ModelCanary, live: LiveModel | None = None) -> dict[str, Any]:
    """Undoes the last promotion: every alias back to its previous version, the live-model parameter and
    the pointer back to the previous model.

    Shopper profiles stay as the newer model wrote them: they are keyed by item id, which both models
    understand, and the next training rewrites them.
    """
    pointer = production_pointer(s3, bucket)
    if pointer is None or "previous" not in pointer or "swap" not in pointer:
        raise NothingToRollBackError("the production pointer records no swap to undo")
    switches = [FunctionSwitch(**switch) for switch in pointer["swap"]["functions"]]
    canary.rollback(switches)
    previous = pointer["previous"]
    if live is not None:
        live.set(previous["model_version"])
    s3.put_object(Bucket=bucket, Key=PRODUCTION_POINTER, Body=json.dumps(previous).encode())
    logger.warning("model %s rolled back to %s", pointer["model_version"], previous["model_version"])
    return {
        "rolled_back": pointer["model_version"],
        "model_version": previous["model_version"],
        "functions": {switch.function_name: switch.previous_version for switch in switches},
    }


def canary_failed(s3: Any, bucket: str, deployment_id: str, live: LiveModel | None) -> dict[str, Any]:
    """CodeDeploy stopped a deployment and moved its alias back. When the deployment is one of the last
    promotion's canaries, that promotion is undone: the parameter and the pointer back to the previous
    model (the other functions' canaries watch the same alarms and roll back on their own). Any other
    deployment (a code change through CloudFormation, a release already undone) changes nothing."""
    pointer = production_pointer(s3, bucket)
    deployments = {
        switch.get("deployment_id") for switch in (pointer or {}).get("swap", {}).get("functions", [])
    }
    if pointer is None or deployment_id not in deployments or "previous" not in pointer:
        return {"rolled_back": False, "reason": f"deployment {deployment_id} is not the last promotion's"}
    previous = pointer["previous"]
    if live is not None:
        live.set(previous["model_version"])
    s3.put_object(Bucket=bucket, Key=PRODUCTION_POINTER, Body=json.dumps(previous).encode())
    logger.warning(
        "canary of model %s failed: back to %s", pointer["model_version"], previous["model_version"]
    )
    return {"rolled_back": pointer["model_version"], "model_version": previous["model_version"]}
