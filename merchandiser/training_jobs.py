"""The SageMaker training job request: channels from the event archive and the catalogue in S3.

Bucket layout (one artifacts bucket):
- ``events/year=YYYY/month=MM/day=DD/*.jsonl.gz``  raw events archived from the stream by Firehose, one
  JSON event per line (channel ``interactions``)
- ``events/_tombstones/<user_id>.json``  one per erased shopper (DELETE /users/{id}); inside the
  interactions prefix so the job gets them with the channel, and ``_`` keeps them out of its data files
- ``catalog/items/``, ``catalog/users/``   catalogue and shopper attributes (channels ``items``, ``users``)
- ``training-output/<job>/output/model.tar.gz``  what the job writes (SM_MODEL_DIR, packed by SageMaker)
- ``models/<version>/``, ``models/production.json``  published models and the production pointer
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from merchandiser.settings import TrainingTriggerSettings

EVENTS_PREFIX = "events/"
TOMBSTONES_DIR = "_tombstones"
TOMBSTONES_PREFIX = f"{EVENTS_PREFIX}{TOMBSTONES_DIR}/"
ITEMS_PREFIX = "catalog/items/"
USERS_PREFIX = "catalog/users/"
OUTPUT_PREFIX = "training-output/"
MODELS_PREFIX = "models/"
PRODUCTION_POINTER = "models/production.json"
JOB_PREFIX = "merchandiser-"


def job_name(now: datetime) -> str:
    return f"{JOB_PREFIX}{now:%Y%m%d-%H%M%S}"


def tombstone_key(user_id: str) -> str:
    return f"{TOMBSTONES_PREFIX}{user_id}.json"


def write_tombstone(s3: Any, bucket: str, user_id: str, erased_at: datetime) -> str:
    """Records that a shopper's archived events up to ``erased_at`` must never be trained on again."""
    key = tombstone_key(user_id)
    body = {"user_id": user_id, "erased_at": erased_at.astimezone(UTC).isoformat()}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")
    return key


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


def training_job_request(
    settings: TrainingTriggerSettings, now: datetime, hyperparameters: dict[str, str] | None = None
) -> dict[str, Any]:
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
