"""On "SageMaker Training Job State Change" = Completed, or from the schedule's state machine after a Spark
job run (``{"model_artifact": "s3://.../model.tar.gz"}``): quality gate, then publish the model (its files in
S3, the live-model parameter, a canary per serving function).

Also answers a CodeDeploy "Deployment State-change Notification" (FAILURE or STOP): when it is one of the
last promotion's canaries, the parameter and the production pointer go back to the previous model; and
``{"action": "rollback"}`` (invoked by an operator): every serving alias back to the version it served
before the last promotion, the parameter and the pointer back.
"""

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from aws_lambda_powertools import Logger, Tracer

from merchandiser.publishing import LiveModel, ModelCanary, canary_failed, publish, rollback, unpack
from merchandiser.settings import PublishSettings
from merchandiser.store import FeatureStore

logger = Logger()
tracer = Tracer()
CODEDEPLOY_STATE_CHANGE = "CodeDeploy Deployment State-change Notification"


def names(csv: str) -> list[str]:
    return [name for name in csv.split(",") if name]


def model_canary(settings: PublishSettings) -> ModelCanary | None:
    """The canary, when the stack configured one (the local twin reloads its functions instead)."""
    if not settings.deployment_application:
        return None
    targets = tuple(zip(names(settings.serving_functions), names(settings.deployment_groups), strict=True))
    return ModelCanary(
        boto3.client("lambda"), boto3.client("codedeploy"), settings.deployment_application, targets,
        settings.serving_alias,
    )  # fmt: skip


def live_model(settings: PublishSettings) -> LiveModel | None:
    return LiveModel(boto3.client("ssm"), settings.model_parameter) if settings.model_parameter else None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = PublishSettings.from_env()
    if event.get("action") == "rollback":
        canary = model_canary(settings)
        if canary is None:
            return {"rolled_back": False, "reason": "no canary is configured"}
        return rollback(boto3.client("s3"), settings.artifacts_bucket, canary, live_model(settings))
    if event.get("detail-type") == CODEDEPLOY_STATE_CHANGE:
        deployment = str(event["detail"].get("deploymentId", ""))
        return canary_failed(boto3.client("s3"), settings.artifacts_bucket, deployment, live_model(settings))
    if "model_artifact" in event:  # the state machine, after the Spark job run succeeded
        artifact = urlparse(str(event["model_artifact"]))
    else:
        detail = event["detail"]
        if detail.get("TrainingJobStatus") != "Completed":
            return {"published": False, "reason": f"job status is {detail.get('TrainingJobStatus')}"}
        artifact = urlparse(detail["ModelArtifacts"]["S3ModelArtifacts"])
    if artifact.scheme != "s3" or not artifact.netloc or not artifact.path.endswith(".tar.gz"):
        raise ValueError(f"the model artifact must be s3://bucket/...tar.gz, got {artifact.geturl()!r}")
    s3 = boto3.client("s3")
    store = FeatureStore(
        boto3.resource("dynamodb"), settings.users_table, sessions_table="", items_table=settings.items_table
    )
    with tempfile.TemporaryDirectory() as work:
        archive = Path(work) / "model.tar.gz"
        s3.download_file(artifact.netloc, artifact.path.lstrip("/"), str(archive))
        model_dir = unpack(archive, Path(work) / "model")
        return publish(
            s3,
            store,
            settings.artifacts_bucket,
            model_dir,
            model_canary(settings),
            live_model(settings),
            settings.counterfactual_min_impressions,
        )
