"""The SageMaker training job request: channels from the event archive, the catalogue and the production
model in S3; and the catalogue export the trigger writes before it.

Why a scan and not a DynamoDB export: an export to S3 needs point-in-time recovery, runs for minutes
and writes DynamoDB JSON under a prefix it names itself, so the trigger would have to wait for it (a
Step Functions state machine) before it could start the job. A scan of a catalogue of 100,000 items
(about 30 MB) takes a few seconds and a few thousand read units inside this function's timeout, and
writes the channel's own format; past a few million items, the export is the better tool.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from merchandiser.settings import TrainingTriggerSettings
from merchandiser.store import (
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    ITEMS_PREFIX,
    ITEMS_TABLE_SNAPSHOT_KEY,
    OUTPUT_PREFIX,
    USERS_PREFIX,
)

JOB_PREFIX = "merchandiser-"


def job_name(now: datetime) -> str:
    return f"{JOB_PREFIX}{now:%Y%m%d-%H%M%S}"


def job_output_uri(output_uri: str, name: str, archive: str = "model.tar.gz") -> str:
    """Where a job leaves its ``model.tar.gz`` (and ``output.tar.gz``) under its S3 output path: SageMaker's
    layout, which the EMR Serverless job keeps so that publish reads both alike."""
    return f"{output_uri.rstrip('/')}/{name}/output/{archive}"


def _channel(name: str, bucket: str, prefix: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{bucket}/{prefix}",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def export_catalogue(records: Iterable[Mapping[str, Any]], s3: Any, bucket: str) -> dict[str, Any]:
    """Writes the items table's records where the ``items`` channel reads them (one JSON object a line,
    only the fields each record has: training merges them field by field over the channel's other files)."""
    buffer = io.BytesIO()
    count = 0
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed:
        for record in records:
            compressed.write((json.dumps(dict(record), sort_keys=True, default=str) + "\n").encode())
            count += 1
    s3.put_object(Bucket=bucket, Key=ITEMS_TABLE_SNAPSHOT_KEY, Body=buffer.getvalue())
    return {"key": ITEMS_TABLE_SNAPSHOT_KEY, "items": count}


def training_job_request(
    settings: TrainingTriggerSettings,
    now: datetime,
    hyperparameters: dict[str, str] | None = None,
    production_prefix: str | None = None,
) -> dict[str, Any]:
    """``production_prefix``: where the production model's files are (``models/<version>/``), passed as the
    ``production`` channel so the job scores it on its own test window."""
    bucket = settings.artifacts_bucket
    return {
        "TrainingJobName": job_name(now),
        "RoleArn": settings.training_role_arn,
        "AlgorithmSpecification": {"TrainingImage": settings.training_image_uri, "TrainingInputMode": "File"},
        # Script mode: the framework container unpacks the source and runs training/train.py.
        "HyperParameters": {
            "sagemaker_program": "training/train.py",
            "sagemaker_submit_directory": settings.training_source_uri,
            **(hyperparameters or {}),
        },
        "InputDataConfig": [
            _channel("interactions", bucket, EVENTS_PREFIX),
            _channel("items", bucket, ITEMS_PREFIX),
            _channel("users", bucket, USERS_PREFIX),
            _channel("impressions", bucket, IMPRESSIONS_PREFIX),  # what was shown: position bias
            *([_channel("production", bucket, production_prefix)] if production_prefix else []),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{OUTPUT_PREFIX}"},
        "ResourceConfig": {
            "InstanceType": settings.training_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3 * 3600},
        "Tags": [{"Key": "app", "Value": "merchandiser"}],
    }
