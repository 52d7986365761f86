"""Scheduled daily by EventBridge: rewrites the artifacts bucket without the erased shoppers (the archive's
events and impressions, the users channel, shopper features packed in models), reading the tombstones
``DELETE /users/{id}`` wrote. ``merchandiser.store.erasure`` says what and why."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.settings import ErasureSettings
from merchandiser.store import ArchiveEraser

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = ErasureSettings.from_env()
    report = ArchiveEraser(boto3.client("s3"), settings.artifacts_bucket).run()
    if report["not_rewritten"]:
        logger.warning(
            "objects in a format the eraser cannot rewrite", extra={"keys": report["not_rewritten"]}
        )
    return report
