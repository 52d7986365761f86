"""Scheduled by EventBridge: starts the SageMaker training job on the archived events."""

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.publishing import training_job_request
from merchandiser.settings import TrainingTriggerSettings

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = training_job_request(TrainingTriggerSettings.from_env(), datetime.now(UTC))
    response = boto3.client("sagemaker").create_training_job(**request)
    logger.info("training job started", extra={"job": request["TrainingJobName"]})
    return {"training_job_name": request["TrainingJobName"], "arn": response["TrainingJobArn"]}
