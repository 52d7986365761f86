"""The first step of the schedule's state machine: exports the catalogue from the items table into the
``items`` channel, then, by the size of the event archive, either starts the SageMaker training job on the
archived events, the catalogue and the production model, or returns the EMR Serverless job run (Spark)
that the state machine starts next (``merchandiser.publishing.engine``).

Invoked with ``{"hyperparameters": {"factors": "32", ...}}``, it passes them to the job; ``{"engine":
"sagemaker" | "spark"}`` overrides the choice (spark only where the stack has an EMR application)."""

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.publishing import (
    EmrJob,
    archive_size,
    choose_engine,
    emr_job_run,
    export_catalogue,
    model_artifact,
    production_pointer,
    training_job_request,
)
from merchandiser.settings import TrainingTriggerSettings
from merchandiser.store import ItemRecords

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = TrainingTriggerSettings.from_env()
    s3 = boto3.client("s3")
    records = ItemRecords(boto3.resource("dynamodb"), "", "", settings.items_table).scan_items()
    exported = export_catalogue(records, s3, settings.artifacts_bucket)
    pointer = production_pointer(s3, settings.artifacts_bucket)
    production = None if pointer is None else str(pointer["prefix"])
    # an operator (or `merchandiser retrain` on the twin) may pass hyperparameters: --name value in the job
    hyperparameters = {str(name): str(value) for name, value in event.get("hyperparameters", {}).items()}
    now = datetime.now(UTC)
    size = archive_size(s3, settings.artifacts_bucket)
    engine = str(event.get("engine") or choose_engine(size, settings.spark_min_events))
    if engine not in ("sagemaker", "spark"):
        raise ValueError(f"engine must be sagemaker or spark, got {engine!r}")
    if engine == "spark" and not settings.emr_application_id:
        logger.warning("the archive asks for Spark but the stack has no EMR application: training here")
        engine = "sagemaker"
    archive = {"objects": size.objects, "bytes": size.bytes, "estimated_events": size.estimated_events}
    planned = {"engine": engine, "archive": archive, "catalogue": exported, "production": production}
    if engine == "spark":
        job = EmrJob(
            settings.emr_application_id,
            settings.emr_role_arn,
            settings.emr_entry_point_uri,
            settings.emr_source_uri,
            settings.emr_python_env_uri,
        )
        run = emr_job_run(job, settings.artifacts_bucket, now, hyperparameters, production)
        logger.info("spark job run planned", extra={"job": run["Name"], **archive})
        return {
            **planned,
            "job_run": run,
            "model_artifact": model_artifact(settings.artifacts_bucket, run["Name"]),
        }
    request = training_job_request(settings, now, hyperparameters, production)
    response = boto3.client("sagemaker").create_training_job(**request)
    logger.info(
        "training job started",
        extra={"job": request["TrainingJobName"], "catalogue_items": exported["items"], **archive},
    )
    return {**planned, "training_job_name": request["TrainingJobName"], "arn": response["TrainingJobArn"]}
