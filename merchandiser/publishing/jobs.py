"""The SageMaker training job request: channels from the event archive and the catalogue in S3."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from merchandiser.settings import TrainingTriggerSettings
from merchandiser.store import EVENTS_PREFIX, IMPRESSIONS_PREFIX, ITEMS_PREFIX, OUTPUT_PREFIX, USERS_PREFIX

JOB_PREFIX = "merchandiser-"


def job_name(now: datetime) -> str:
    return f"{JOB_PREFIX}{now:%Y%m%d-%H%M%S}"


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
            _channel("impressions", bucket, IMPRESSIONS_PREFIX),  # what was shown: position bias
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
