"""Where a deployed serving function finds its model: the live version in an SSM parameter, the files in S3.

The parameter (``ServingSettings.model_parameter``) holds the version the publish step promoted; it is
not a resource of any template, so `cdk deploy` never writes it back to an older value. The files are
the ones publish uploaded under ``models/<version>/`` of the artifacts bucket; they are downloaded once
per container into ``<cache dir>/<version>/`` (a staging folder renamed when complete, so a folder under
a version's name always holds everything that could be fetched), each checked against its manifest hash
as it arrives (a file that does not match is dropped, and its part degrades as a missing one), and loaded
from there without hashing them again: ``.npy`` arrays memory-mapped. With SnapStart this happens
before the snapshot, so a restored container starts with the model already in memory; and the model is
loaded whole into memory, its files deleted as they are read (``load_into_memory``), so that ``/tmp``
stays within SnapStart's 512 MB up to about a million items.

What cannot be fetched degrades like a broken model dir does (``merchandiser.serving.model``): a
missing parameter or manifest leaves nothing to trust (the caller serves the last-resort list), a
missing file degrades only its part (the ranker, the index...).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import hnswlib
from botocore.exceptions import BotoCoreError, ClientError

from merchandiser.catalog import LOAD_ERRORS, load_index
from merchandiser.serving.model import LoadedModel, load_model
from merchandiser.store import CONTENT_INDEX, INDEX, MANIFEST, MODELS_PREFIX, SERVING_FILES, sha256_of

logger = logging.getLogger(__name__)

STAGING_SUFFIX = ".partial"
# Read whole into memory by hnswlib, and the largest files of a model (the placed items' index: 360 MB of
# a million-item model's 709 MB).
INDEX_FILES = (INDEX, CONTENT_INDEX)


class ModelSourceError(RuntimeError):
    """The live model version or its manifest cannot be read: nothing of the model can be trusted."""


def model_prefix(version: str) -> str:
    return f"{MODELS_PREFIX}{version}/"


def live_version(ssm: Any, parameter: str) -> str:
    """The version the parameter names; raises ``ModelSourceError`` when it is missing or empty."""
    try:
        value = str(ssm.get_parameter(Name=parameter)["Parameter"]["Value"]).strip()
    except (ClientError, BotoCoreError) as error:
        raise ModelSourceError(f"cannot read the live model parameter {parameter}: {error}") from error
    if not value or "/" in value:
        raise ModelSourceError(f"the live model parameter {parameter} holds no usable version: {value!r}")
    return value


def fetch_model(s3: Any, bucket: str, version: str, cache_dir: Path) -> Path:
    """``<cache_dir>/<version>/`` holding the version's manifest and every serving file S3 has of it."""
    target = cache_dir / version
    if (target / MANIFEST).is_file():
        return target  # fetched earlier by this container (a model is immutable once published)
    # a staging folder of this fetch's own: processes sharing the cache dir (the twin's front workers,
    # several threads of one) never write into each other's
    staging = _staging_dir(cache_dir, version)
    try:
        listed = _fetch_manifest(s3, bucket, version, staging)
    except ModelSourceError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name in SERVING_FILES:
        if name != MANIFEST and name in listed:
            _fetch_file(s3, bucket, version, name, staging, listed[name])
    try:
        staging.rename(target)
    except OSError:  # another fetch completed the same version first: the same immutable files
        if not (target / MANIFEST).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_into_memory(s3: Any, bucket: str, version: str, cache_dir: Path) -> LoadedModel:
    """The version loaded whole into memory (no array memory-mapped), its files deleted once read: what a
    SnapStart function loads before the snapshot. SnapStart allows at most 512 MB of ``/tmp``, less than
    the 709 MB of files of a million-item model; loaded this way, ``/tmp`` holds at most one HNSW index
    (fetched first, one at a time, each deleted once hnswlib has read it) or the other files together:
    360 and 304 MB at a million items."""
    staging = _staging_dir(cache_dir, version)
    try:
        listed = _fetch_manifest(s3, bucket, version, staging)
        manifest = json.loads((staging / MANIFEST).read_text())
        dim = int(manifest.get("als", {}).get("factors", 0))
        indexes: dict[str, hnswlib.Index] = {}
        read = {MANIFEST}
        for name in INDEX_FILES if dim > 0 else ():  # no dimension named: the indexes load from disk
            read.add(name)
            if name in listed and _fetch_file(s3, bucket, version, name, staging, listed[name]):
                try:  # a truncated file: its part degrades as a missing one
                    indexes[name] = load_index(staging / name, dim)
                except LOAD_ERRORS as error:
                    logger.error("model index unreadable", extra={"file": name, "error": str(error)})
                finally:
                    (staging / name).unlink()
        for name in SERVING_FILES:
            if name not in read and name in listed:
                _fetch_file(s3, bucket, version, name, staging, listed[name])
        return load_model(staging, mmap=False, verified=True, indexes=indexes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _staging_dir(cache_dir: Path, version: str) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{version}{STAGING_SUFFIX}-", dir=cache_dir))


def _fetch_manifest(s3: Any, bucket: str, version: str, directory: Path) -> dict[str, str]:
    """The manifest, downloaded into ``directory``; its files and their hashes."""
    prefix = model_prefix(version)
    try:
        s3.download_file(bucket, f"{prefix}{MANIFEST}", str(directory / MANIFEST))
        listed: dict[str, str] = json.loads((directory / MANIFEST).read_text()).get("files", {})
    except (ClientError, BotoCoreError, OSError, ValueError) as error:
        raise ModelSourceError(f"no readable manifest at s3://{bucket}/{prefix}: {error}") from error
    return listed


def _fetch_file(s3: Any, bucket: str, version: str, name: str, directory: Path, expected: str) -> bool:
    """Downloads one file into ``directory``; False, with no file left, when it cannot be fetched or does
    not match its manifest hash (its part then degrades when the model loads)."""
    path = directory / name
    try:
        s3.download_file(bucket, f"{model_prefix(version)}{name}", str(path))
    except (ClientError, BotoCoreError) as error:
        logger.error("model file not fetched", extra={"file": name, "version": version, "error": str(error)})
        path.unlink(missing_ok=True)
        return False
    if sha256_of(path) != expected:
        logger.error("model file does not match its manifest hash", extra={"file": name, "version": version})
        path.unlink()
        return False
    return True
