"""Which engine trains the shop, chosen by the event archive's size, and the Spark job run on EMR Serverless:
the plan start_training returns to the state machine, and the job run's entry point (training/emr_job.py)
against S3 on moto, with the real training job on local Spark."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local_twin.functions import LambdaContext
from merchandiser.publishing import (
    ArchiveSize,
    EmrJob,
    archive_size,
    choose_engine,
    emr_job_run,
    model_artifact,
)
from merchandiser.publishing.engine import ARCHIVE_BYTES_PER_EVENT
from merchandiser.store import EVENTS_PREFIX, ITEMS_PREFIX, MANIFEST
from training import emr_job
from training.datasets.synthetic_shop import generate

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "artifacts"
JOB = EmrJob(
    "app-1", "arn:aws:iam::123456789012:role/emr", "s3://assets/emr_job.py", "s3://assets/source.zip"
)
TRIGGER_ENVIRONMENT = {
    "ARTIFACTS_BUCKET": BUCKET,
    "ITEMS_TABLE": "items",
    "TRAINING_ROLE_ARN": "arn:aws:iam::123456789012:role/training",
    "TRAINING_SOURCE_URI": "s3://assets/sourcedir.tar.gz",
    "TRAINING_IMAGE_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/training:1",
    "SPARK_MIN_EVENTS": "100",
}


def archive(s3: Any, events: int, key: str = "year=2026/month=11/day=30/part-0.gz") -> None:
    """An archived object the size of ``events`` events (its size is all the choice reads)."""
    s3.put_object(Bucket=BUCKET, Key=f"{EVENTS_PREFIX}{key}", Body=b"x" * (events * ARCHIVE_BYTES_PER_EVENT))


# --- the choice ---------------------------------------------------------------------------------------------
def test_the_archive_size_counts_the_events_prefix_only(aws: Any) -> None:
    s3 = boto3.client("s3")
    archive(s3, 30, "a.gz")
    archive(s3, 20, "b.gz")
    s3.put_object(Bucket=BUCKET, Key=f"{ITEMS_PREFIX}items.jsonl.gz", Body=b"x" * 10_000)
    assert archive_size(s3, BUCKET) == ArchiveSize(objects=2, bytes=50 * ARCHIVE_BYTES_PER_EVENT)
    assert archive_size(s3, BUCKET).estimated_events == 50


def test_spark_trains_once_the_archive_reaches_the_threshold() -> None:
    assert choose_engine(ArchiveSize(1, 99 * ARCHIVE_BYTES_PER_EVENT), 100) == "sagemaker"
    assert choose_engine(ArchiveSize(1, 100 * ARCHIVE_BYTES_PER_EVENT), 100) == "spark"
    with pytest.raises(ValueError, match="spark_min_events"):
        choose_engine(ArchiveSize(0, 0), 0)


def test_the_job_run_carries_the_channels_the_hyperparameters_and_the_python_environment() -> None:
    run = emr_job_run(
        EmrJob(**{**JOB.__dict__, "python_env_uri": "s3://assets/env.tar.gz"}),
        BUCKET,
        datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
        {"factors": "64"},
        "models/v1/",
    )
    submit = run["JobDriver"]["SparkSubmit"]
    assert run["Name"] == "merchandiser-20261130-020000" and run["ApplicationId"] == "app-1"
    assert submit["EntryPoint"] == "s3://assets/emr_job.py"
    arguments = submit["EntryPointArguments"]
    assert arguments[:6] == [
        "--bucket",
        BUCKET,
        "--job-name",
        run["Name"],
        "--output-prefix",
        "training-output/",
    ]
    assert "production=models/v1/" in arguments and "interactions=events/" in arguments
    assert arguments[-2:] == ["--hyperparameter", "factors=64"]
    assert "--py-files s3://assets/source.zip" in submit["SparkSubmitParameters"]
    assert "spark.archives=s3://assets/env.tar.gz#environment" in submit["SparkSubmitParameters"]
    assert (
        "spark.archives"
        not in emr_job_run(JOB, BUCKET, datetime.now(UTC))["JobDriver"]["SparkSubmit"][
            "SparkSubmitParameters"
        ]
    )


# --- start_training: the state machine's first step ---------------------------------------------------------
@pytest.fixture
def trigger(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from lambdas.start_training import handler

    for key, value in TRIGGER_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    boto3.client("iam").create_role(
        RoleName="training", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    return handler


def training_jobs() -> list[str]:
    return [
        job["TrainingJobName"]
        for job in boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    ]


def test_a_small_archive_starts_the_sagemaker_job(trigger: Any) -> None:
    archive(boto3.client("s3"), 99)
    result = trigger.handler({}, LambdaContext("start_training"))
    assert result["engine"] == "sagemaker" and result["archive"]["estimated_events"] == 99
    assert training_jobs() == [result["training_job_name"]]


def test_a_large_archive_plans_the_spark_job_run_and_starts_no_sagemaker_job(
    trigger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emr = {"EMR_APPLICATION_ID": "app-1", "EMR_ROLE_ARN": JOB.execution_role_arn,
           "EMR_ENTRY_POINT_URI": JOB.entry_point_uri, "EMR_SOURCE_URI": JOB.source_zip_uri}  # fmt: skip
    for key, value in emr.items():
        monkeypatch.setenv(key, value)
    archive(boto3.client("s3"), 100)
    result = trigger.handler({"hyperparameters": {"factors": 32}}, LambdaContext("start_training"))
    assert result["engine"] == "spark" and training_jobs() == []
    assert result["job_run"]["ApplicationId"] == "app-1"
    assert "factors=32" in result["job_run"]["JobDriver"]["SparkSubmit"]["EntryPointArguments"]
    assert result["model_artifact"] == model_artifact(BUCKET, result["job_run"]["Name"])


def test_without_an_emr_application_a_large_archive_still_trains_on_sagemaker(trigger: Any) -> None:
    archive(boto3.client("s3"), 1_000)
    result = trigger.handler({}, LambdaContext("start_training"))
    assert result["engine"] == "sagemaker" and training_jobs() == [result["training_job_name"]]


def test_an_unknown_engine_is_refused(trigger: Any) -> None:
    with pytest.raises(ValueError, match="engine must be sagemaker or spark"):
        trigger.handler({"engine": "dask"}, LambdaContext("start_training"))


# --- the job run's entry point ------------------------------------------------------------------------------
def entry_args(work: Path | None = None, *extra: str) -> argparse.Namespace:
    argv = ["--bucket", BUCKET, "--job-name", "job-1", "--output-prefix", "training-output/",
            "--channel", "interactions=events/", "--channel", "items=catalog/items/", *extra]  # fmt: skip
    return emr_job.parse_args([*argv, *(["--work-dir", str(work)] if work else [])])


def test_the_entry_point_copies_the_channels_trains_and_leaves_the_model_where_publish_reads_it(
    aws: Any, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    archive(s3, 3)
    s3.put_object(Bucket=BUCKET, Key=f"{ITEMS_PREFIX}items.csv", Body=b"item_id\ni1\n")
    seen: dict[str, Any] = {}

    def train(arguments: Sequence[str], environ: Mapping[str, str]) -> int:
        seen.update(arguments=list(arguments), environ=dict(environ))
        seen["files"] = sorted(
            p.name for p in Path(environ["SM_CHANNEL_INTERACTIONS"]).rglob("*") if p.is_file()
        )
        Path(environ["SM_MODEL_DIR"], MANIFEST).write_text("{}")
        Path(environ["SM_OUTPUT_DATA_DIR"], "evaluation.json").write_text("{}")
        return 0

    summary = emr_job.run(entry_args(tmp_path / "work", "--hyperparameter", "factors=16"), s3, train)
    # Then train.py saw SageMaker's variables (no users channel: nothing under it), on Spark, with the values
    assert seen["files"] == ["part-0.gz"] and "SM_CHANNEL_ITEMS" in seen["environ"]
    assert "SM_CHANNEL_USERS" not in seen["environ"]
    assert seen["arguments"][2:] == ["--engine", "spark", "--factors", "16"]
    # and the model is where the state machine tells publish to look, the local copies gone
    assert summary["model_artifact"] == model_artifact(BUCKET, "job-1")
    body = s3.get_object(Bucket=BUCKET, Key="training-output/job-1/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == [MANIFEST]
    s3.head_object(Bucket=BUCKET, Key="training-output/job-1/output/output.tar.gz")
    assert not (tmp_path / "work").exists()


def test_a_failed_training_fails_the_job_run_and_uploads_nothing(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    archive(s3, 3)
    with pytest.raises(RuntimeError, match="exited with 2"):
        emr_job.run(entry_args(tmp_path / "work"), s3, lambda arguments, environ: 2)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="training-output/")
    assert not (tmp_path / "work").exists()


def test_an_empty_archive_fails_the_job_run_with_its_reason(aws: Any, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no events under s3://artifacts/events/"):
        emr_job.run(entry_args(tmp_path / "work"), boto3.client("s3"), lambda arguments, environ: 0)


@pytest.mark.parametrize(
    "extra", [["--channel", "interactions"], ["--channel", "secrets=x/"], ["--hyperparameter", "=1"]]
)
def test_bad_arguments_are_refused_with_a_message(extra: list[str]) -> None:
    with pytest.raises(SystemExit, match=r"channel|hyperparameter"):
        entry_args(None, *extra)


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_the_entry_point_runs_the_real_job_on_local_spark_as_spark_submit_would(
    moto_server: str, tmp_path: Path
) -> None:
    pytest.importorskip("pyspark")
    # Given a shop's events and catalogue in S3 (moto's server, so that the job's own process reaches it)
    data = tmp_path / "shop"
    generate(data, n_users=300, n_items=150, seed=7)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{EVENTS_PREFIX}part-0.csv.gz",
                  Body=gzip.compress((data / "interactions.csv").read_bytes()))  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key=f"{ITEMS_PREFIX}items.csv", Body=(data / "items.csv").read_bytes())
    # When the entry point runs as a file, as spark-submit runs it
    environ = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "SPARK_DRIVER_MEMORY": "1g"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "training" / "emr_job.py"), "--bucket", BUCKET, "--job-name", "job-1",
         "--output-prefix", "training-output/", "--channel", "interactions=events/",
         "--channel", "items=catalog/items/", "--hyperparameter", "factors=8",
         "--hyperparameter", "iterations=5", "--hyperparameter", "tuning_trials=0"],
        env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    # Then the model the Spark engine trained is where publish reads it, with its manifest
    body = s3.get_object(Bucket=BUCKET, Key="training-output/job-1/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert manifest["hyperparameters"]["engine"] == "spark"
