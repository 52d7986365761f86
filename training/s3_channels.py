"""A training job's S3 side, the same for every place the job runs: the channels copied from S3 prefixes
into local directories (SageMaker's File input mode), and the model dir packed as ``model.tar.gz`` under
``<output>/<job>/output/`` (SageMaker's output layout, which the publish step reads). The twin's stand-in
for SageMaker and the EMR Serverless entry point (``training.emr_job``) both use them."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any


def download_prefix(s3: Any, uri: str, into: Path) -> int:
    """Every object under the ``s3://bucket/prefix`` ``uri`` into ``into`` (paths below the prefix kept);
    the number of objects."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            target = into / entry["Key"][len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, entry["Key"], str(target))
            count += 1
    return count


def upload_dir(s3: Any, directory: Path, uri: str) -> str:
    """``directory``'s files packed as one .tar.gz at the S3 ``uri``; the ``uri``."""
    archive = directory.parent / f"{directory.name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.iterdir()):
            tar.add(path, arcname=path.name)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        s3.upload_file(str(archive), bucket, key)
    finally:
        archive.unlink()
    return uri
