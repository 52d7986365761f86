"""On "SageMaker Training Job State Change" = Completed: quality gate, then publish the model.

Also answers ``{"action": "rollback"}`` (invoked by an operator): every serving alias back to the
version it served before the last promotion, and the previous production pointer back.
"""

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.publishing import ModelSwap, publish, rollback, unpack
from merchandiser.settings import PublishSettings
from merchandiser.store import FeatureStore

logger = Logger()
tracer = Tracer()


def model_swap(settings: PublishSettings) -> ModelSwap | None:
    """The layer swap, when the stack configured one (the local twin repoints MODEL_DIR instead)."""
    if not settings.model_layer_name:
        return None
    functions = tuple(name for name in settings.serving_functions.split(",") if name)
    return ModelSwap(boto3.client("lambda"), settings.model_layer_name, functions, settings.serving_alias)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = PublishSettings.from_env()
    if event.get("action") == "rollback":
        swap = model_swap(settings)
        if swap is None:
            return {"rolled_back": False, "reason": "no model layer swap is configured"}
        return rollback(boto3.client("s3"), settings.artifacts_bucket, swap)
    detail = event["detail"]
    if detail.get("TrainingJobStatus") != "Completed":
        return {"published": False, "reason": f"job status is {detail.get('TrainingJobStatus')}"}
    artifact = urlparse(detail["ModelArtifacts"]["S3ModelArtifacts"])
    s3 = boto3.client("s3")
    store = FeatureStore(
        boto3.resource("dynamodb"), settings.users_table, sessions_table="", items_table=settings.items_table
    )
    with tempfile.TemporaryDirectory() as work:
        archive = Path(work) / "model.tar.gz"
        s3.download_file(artifact.netloc, artifact.path.lstrip("/"), str(archive))
        model_dir = unpack(archive, Path(work) / "model")
        return publish(s3, store, settings.artifacts_bucket, model_dir, model_swap(settings))
