"""The training job's source code (``training/`` + ``merchandiser/``) as one reproducible tarball.

Its root also holds a ``requirements.txt`` (the project's runtime pins from pyproject.toml, without
boto3, which the image has): the SageMaker training toolkit pip-installs it before running
``training/train.py``, since the framework image has neither lightgbm nor hnswlib.

SageMaker script mode wants ``sourcedir.tar.gz``; a CDK directory asset would be a zip, so the
tarball is built here (sorted entries, zeroed mtimes: same sources, same bytes, same asset hash)
and shipped as a file asset. Spark's ``--py-files`` wants a zip of the same packages (``build_source_zip``).

``TRAINING_INPUTS``: the artifacts bucket's prefixes a training job reads, whichever engine runs it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
import tomllib
import zipfile
from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from merchandiser.store import (
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    ITEMS_PREFIX,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    USERS_PREFIX,
)
from stacks.permissions import allow_list, allow_objects

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("training", "merchandiser")
IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache"}
# the job's channels (training_job_request, emr_job_run); models/: the production model, scored on the job's
# own test window for the quality gate
TRAINING_INPUTS = (EVENTS_PREFIX, IMPRESSIONS_PREFIX, ITEMS_PREFIX, USERS_PREFIX, MODELS_PREFIX)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: same sources, same bytes
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/(?P<repo>[^:@]+)"
)


def _members(root: Path) -> list[Path]:
    files = []
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not IGNORED.intersection(relative.parts) and path.suffix != ".pyc":
                files.append(relative)
    return files


def training_requirements(root: Path = REPO_ROOT) -> bytes:
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [pin for pin in dependencies if not pin.startswith(("boto3", "botocore"))]
    return ("\n".join(pins) + "\n").encode()


def build_source_tarball(directory: Path, root: Path = REPO_ROOT) -> Path:
    """Writes ``directory/<content hash>/sourcedir.tar.gz`` (once per content) and returns it."""
    raw = io.BytesIO()
    entries = [("requirements.txt", training_requirements(root))]
    entries += [(relative.as_posix(), (root / relative).read_bytes()) for relative in _members(root)]
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return _write_once(directory, gzip.compress(raw.getvalue(), mtime=0), "sourcedir.tar.gz")


def _write_once(directory: Path, payload: bytes, name: str) -> Path:
    """``directory/<content hash>/name`` holding ``payload``, written once per content, atomically."""
    target = directory / hashlib.sha256(payload).hexdigest()[:16] / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(payload)
        partial.replace(target)  # atomic: concurrent synths never see half a file
    return target


def build_source_zip(directory: Path, root: Path = REPO_ROOT) -> Path:
    """Writes ``directory/<content hash>/source.zip`` (training/ and merchandiser/, for ``--py-files``)."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in _members(root):
            info = zipfile.ZipInfo(relative.as_posix(), date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, (root / relative).read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return _write_once(directory, raw.getvalue(), "source.zip")


def allow_training_io(grantee: iam.IGrantable, bucket: s3.IBucket, who_writes: str) -> None:
    """A training job's role (SageMaker's, the Spark job run's): read and list the channels' prefixes, write
    the model under ``training-output/`` (``who_writes``: how its per-job key is named, for cdk-nag)."""
    allow_objects(grantee, bucket, TRAINING_INPUTS, ["s3:GetObject"], "a training channel is a whole prefix.")
    allow_list(grantee, bucket, TRAINING_INPUTS)
    allow_objects(grantee, bucket, [OUTPUT_PREFIX], ["s3:PutObject", "s3:AbortMultipartUpload"], who_writes)


def ecr_repository_arn(image_uri: str, partition: str) -> str:
    """The ECR repository ARN of an image URI (for a pull-only grant), parsed without AWS calls."""
    match = ECR_IMAGE.match(image_uri)
    if match is None:
        raise ValueError(f"training image {image_uri!r} is not an ECR image URI (ACCOUNT.dkr.ecr.REGION...)")
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"
