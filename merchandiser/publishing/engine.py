"""Which engine trains a shop, chosen by the size of its event archive, and the EMR Serverless job run.

One machine (the SageMaker job) trains a shop whose history fits it: about 10M interactions in the
measured time and memory (README, "Training at scale"). Past that, the schedule's state machine runs the
same job on Spark: an EMR Serverless job run (``training/emr_job.py`` as its entry point) that reads the
same channels, trains with ``--engine spark`` and writes ``model.tar.gz`` where SageMaker would, so the
publish step is the same for both.

The archive is gzipped JSON lines (Firehose); its size in bytes is known from one listing, without
reading an object, so the choice costs a few ListObjectsV2 pages, not a scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from merchandiser.publishing.jobs import job_name, job_output_uri
from merchandiser.store import EVENTS_PREFIX, IMPRESSIONS_PREFIX, ITEMS_PREFIX, OUTPUT_PREFIX, USERS_PREFIX

Engine = Literal["sagemaker", "spark"]
# Gzipped archive bytes per event: Online Retail's first 200,000 lines as stream records (Event.to_record,
# one JSON line each, a random event id), gzipped as Firehose writes them: 28.9 B (210 B raw).
ARCHIVE_BYTES_PER_EVENT = 29
EMR_MAX_RUNTIME_MINUTES = 180


@dataclass(frozen=True)
class ArchiveSize:
    objects: int
    bytes: int

    @property
    def estimated_events(self) -> int:
        return self.bytes // ARCHIVE_BYTES_PER_EVENT


def archive_size(s3: Any, bucket: str, prefix: str = EVENTS_PREFIX) -> ArchiveSize:
    """The objects under ``prefix`` and their total size, from the listing alone."""
    objects = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            objects += 1
            size += int(entry["Size"])
    return ArchiveSize(objects, size)


def choose_engine(size: ArchiveSize, spark_min_events: int) -> Engine:
    """Spark once the archive holds about ``spark_min_events`` events, else the single-machine job."""
    if spark_min_events <= 0:
        raise ValueError(f"spark_min_events must be positive, got {spark_min_events}")
    return "spark" if size.estimated_events >= spark_min_events else "sagemaker"


@dataclass(frozen=True)
class EmrJob:
    """Where the Spark job runs and what it runs: the EMR Serverless application and its role, the entry
    point (``training/emr_job.py`` uploaded as is), the source as a zip (``--py-files``: training/ and
    merchandiser/) and, when given, a packed Python environment (venv-pack) holding the dependencies."""

    application_id: str
    execution_role_arn: str
    entry_point_uri: str
    source_zip_uri: str
    python_env_uri: str = ""

    def submit_parameters(self) -> str:
        parameters = [f"--py-files {self.source_zip_uri}"]
        if (
            self.python_env_uri
        ):  # EMR Serverless's way to ship a virtualenv: an archive unpacked as ./environment
            python = "./environment/bin/python"
            parameters += [
                f"--conf spark.archives={self.python_env_uri}#environment",
                f"--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={python}",
                f"--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON={python}",
                f"--conf spark.executorEnv.PYSPARK_PYTHON={python}",
            ]
        return " ".join(parameters)


def emr_job_run(
    job: EmrJob,
    bucket: str,
    now: datetime,
    hyperparameters: Mapping[str, str] | None = None,
    production_prefix: str | None = None,
) -> dict[str, Any]:
    """The StartJobRun request of the Spark job (Step Functions' ``emr-serverless:startJobRun.sync`` takes
    these fields). The entry point reads the channels from S3, trains with ``--engine spark`` and writes
    ``training-output/<name>/output/model.tar.gz``, SageMaker's layout, which publish reads."""
    name = job_name(now)
    channels = {
        "interactions": EVENTS_PREFIX,
        "items": ITEMS_PREFIX,
        "users": USERS_PREFIX,
        "impressions": IMPRESSIONS_PREFIX,
        **({"production": production_prefix} if production_prefix else {}),
    }
    arguments = ["--bucket", bucket, "--job-name", name, "--output-prefix", OUTPUT_PREFIX]
    for channel, prefix in channels.items():
        arguments += ["--channel", f"{channel}={prefix}"]
    for key, value in sorted((hyperparameters or {}).items()):
        arguments += ["--hyperparameter", f"{key}={value}"]
    return {
        "Name": name,
        "ApplicationId": job.application_id,
        "ExecutionRoleArn": job.execution_role_arn,
        "JobDriver": {
            "SparkSubmit": {
                "EntryPoint": job.entry_point_uri,
                "EntryPointArguments": arguments,
                "SparkSubmitParameters": job.submit_parameters(),
            }
        },
        "ExecutionTimeoutMinutes": EMR_MAX_RUNTIME_MINUTES,
        "Tags": {"app": "merchandiser"},
    }


def model_artifact(bucket: str, name: str) -> str:
    """Where a job of either engine leaves its model."""
    return job_output_uri(f"s3://{bucket}/{OUTPUT_PREFIX}", name)
