"""On "SageMaker Training Job State Change" = Completed: quality gate, then publish the model."""

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.publishing import publish, unpack
from merchandiser.settings import PublishSettings
from merchandiser.store import FeatureStore

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event["detail"]
    if detail.get("TrainingJobStatus") != "Completed":
        return {"published": False, "reason": f"job status is {detail.get('TrainingJobStatus')}"}
    settings = PublishSettings.from_env()
    artifact = urlparse(detail["ModelArtifacts"]["S3ModelArtifacts"])
    s3 = boto3.client("s3")
    store = FeatureStore(boto3.resource("dynamodb"), settings.users_table, sessions_table="")
    with tempfile.TemporaryDirectory() as work:
        archive = Path(work) / "model.tar.gz"
        s3.download_file(artifact.netloc, artifact.path.lstrip("/"), str(archive))
        return publish(s3, store, settings.artifacts_bucket, unpack(archive, Path(work) / "model"))
