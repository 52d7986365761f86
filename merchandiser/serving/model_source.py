"""Where a deployed serving function finds its model: the live version in an SSM parameter, the files in S3.

The parameter (``ServingSettings.model_parameter``) holds the version the publish step promoted; it is
not a resource of any template, so `cdk deploy` never writes it back to an older value. The files are
the ones publish uploaded under ``models/<version>/`` of the artifacts bucket; they are downloaded once
per container into ``<cache dir>/<version>/`` (a staging folder renamed when complete, so a folder under
a version's name always holds everything that could be fetched), each checked against its manifest hash
as it arrives (a file that does not match is dropped, and its part degrades as a missing one), and loaded
from there without hashing them again: ``.npy`` arrays memory-mapped. With SnapStart this happens
before the snapshot, so a restored container starts with the model already in memory.

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

from botocore.exceptions import BotoCoreError, ClientError

from merchandiser.store import MANIFEST, MODELS_PREFIX, SERVING_FILES, sha256_of

logger = logging.getLogger(__name__)

STAGING_SUFFIX = ".partial"


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
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{version}{STAGING_SUFFIX}-", dir=cache_dir))
    prefix = model_prefix(version)
    try:
        s3.download_file(bucket, f"{prefix}{MANIFEST}", str(staging / MANIFEST))
        listed = json.loads((staging / MANIFEST).read_text()).get("files", {})
    except (ClientError, BotoCoreError, OSError, ValueError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelSourceError(f"no readable manifest at s3://{bucket}/{prefix}: {error}") from error
    for name in SERVING_FILES:
        if name == MANIFEST or name not in listed:
            continue
        try:
            s3.download_file(bucket, f"{prefix}{name}", str(staging / name))
        except (ClientError, BotoCoreError) as error:  # that part degrades when the model loads
            logger.error(
                "model file not fetched", extra={"file": name, "version": version, "error": str(error)}
            )
            (staging / name).unlink(missing_ok=True)
            continue
        if sha256_of(staging / name) != listed[name]:  # that part degrades as a missing one
            logger.error(
                "model file does not match its manifest hash", extra={"file": name, "version": version}
            )
            (staging / name).unlink()
    try:
        staging.rename(target)
    except OSError:  # another fetch completed the same version first: the same immutable files
        if not (target / MANIFEST).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return target
