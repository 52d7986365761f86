"""Scheduled by EventBridge: exports the catalogue from the items table into the ``items`` channel, then
starts the SageMaker training job on the archived events, the catalogue and the production model.

Invoked by hand with ``{"hyperparameters": {"factors": "32", ...}}``, it passes them to the job."""

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.publishing import export_catalogue, production_pointer, training_job_request
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
    request = training_job_request(settings, datetime.now(UTC), hyperparameters, production)
    response = boto3.client("sagemaker").create_training_job(**request)
    logger.info(
        "training job started",
        extra={
            "job": request["TrainingJobName"],
            "catalogue_items": exported["items"],
            "production": production,
        },
    )
    return {
        "training_job_name": request["TrainingJobName"],
        "arn": response["TrainingJobArn"],
        "catalogue": exported,
        "production": production,
    }
