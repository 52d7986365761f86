"""The one helper that builds every Lambda function, and the layers they share.

Each stack that holds functions creates its own ``LayerVersion`` resources from the same layer
folders (the asset is uploaded once, content-addressed). Sharing one layer through a cross-stack
export would block every layer update: CloudFormation refuses to change an export in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Size, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from merchandiser.settings import FunctionSettings
from stacks import checkov_skips as checkov
from stacks import constants as c

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_12
SERVING_ALIAS = "live"  # what API Gateway invokes; the canary moves it (merchandiser.publishing.canary)


@dataclass(frozen=True)
class SwapTargets:
    """What the publish step moves on a promotion: the live-model parameter, the serving functions, their
    aliases and the CodeDeploy application and deployment groups (one per function) that move them."""

    model_parameter: str
    functions: tuple[lambda_.IFunction, ...]
    aliases: tuple[lambda_.IAlias, ...]
    application_name: str
    deployment_groups: tuple[str, ...]
    deployment_group_arns: tuple[str, ...]
    application_arn: str


@dataclass(frozen=True)
class ServingSize:
    """A serving function's memory, /tmp and start-up mode, from the catalogue size and the SnapStart
    setting (context merchandiser:snapStart: constants.serving_start_mode)."""

    memory_mb: int
    ephemeral_mb: int
    snap_start: bool
    provisioned_concurrency: int | None = None  # per live alias, where the on-demand init needs it

    @classmethod
    def for_catalog(cls, catalog_items: int, snap_start: str = c.DEFAULT_SNAPSTART) -> ServingSize:
        """Raises ValueError for a SnapStart setting other than on/off/auto, or "on" past SnapStart's /tmp."""
        mode = c.serving_start_mode(catalog_items, snap_start)
        snapshots = mode == c.START_SNAPSTART
        return cls(
            c.serving_memory_mb(catalog_items),
            c.serving_ephemeral_mb(catalog_items, snapshots),
            snapshots,
            c.SERVING_PROVISIONED_CONCURRENCY if mode == c.START_PROVISIONED else None,
        )


class LayersNotBuiltError(FileNotFoundError):
    """A layer folder app.py needs does not exist."""


def check_layers_dir(layers_dir: Path) -> dict[str, Path]:
    """Returns each layer's folder, or raises naming the command that builds a missing one."""
    folders = {name: layers_dir / name for name in c.LAYER_NAMES}
    missing = [name for name, folder in folders.items() if not folder.is_dir()]
    if missing:
        how = "\n".join(f"  {name}: build it with `{c.LAYER_BUILD_COMMANDS[name]}`" for name in missing)
        raise LayersNotBuiltError(
            f"Lambda layer folder(s) missing under {layers_dir}: {', '.join(missing)}\n{how}\n"
            f"(or point the app elsewhere with -c {c.CONTEXT_LAYERS_DIR}=DIR)"
        )
    return folders


class SharedLayers(Construct):
    """deps + core layers for every function: dependencies and code only, never the model."""

    def __init__(self, scope: Construct, construct_id: str, layers_dir: Path) -> None:
        super().__init__(scope, construct_id)
        folders = check_layers_dir(layers_dir)
        self.deps = self._layer("Deps", folders["deps"], "Pinned runtime dependencies (numpy, lightgbm, ...)")
        self.core = self._layer("Core", folders["core"], "The merchandiser core library")

    def _layer(self, construct_id: str, folder: Path, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            construct_id,
            code=lambda_.Code.from_asset(str(folder), exclude=["__pycache__", "*.pyc", ".stamp"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description=description,
        )

    def for_function(self) -> list[lambda_.ILayerVersion]:
        return [self.deps, self.core]


def service_name(function_name: str) -> str:
    return f"{c.SERVICE_PREFIX}-{function_name.replace('_', '-')}"


def tracing_mode(name: str) -> lambda_.Tracing:
    """Active tracing (follows an upstream sampling decision, such as the API stage's rule, else Lambda's
    fixed 1/s + 5%), or PassThrough for the functions with no upstream decision (constants)."""
    return lambda_.Tracing.PASS_THROUGH if name in c.PASS_THROUGH_TRACING else lambda_.Tracing.ACTIVE


def merchandiser_function(
    scope: Construct,
    name: str,
    settings_model: type[FunctionSettings],
    layers: SharedLayers,
    size: ServingSize | None = None,
    **settings: Any,
) -> lambda_.Function:
    """Builds function ``name`` from ``lambdas/<name>/`` with the environment of ``settings_model``.

    ``settings`` are the model's fields (CDK tokens are fine for str fields); the model validates
    them at synth time, so a missing or unknown setting fails here, not in Lambda. ``size``: a serving
    function's memory, /tmp and SnapStart (required for them, ignored for the others).
    """
    code_dir = LAMBDAS_DIR / name
    if not code_dir.is_dir():
        raise FileNotFoundError(f"function code folder {code_dir} does not exist")
    serving = name in c.SERVING_FUNCTIONS
    if serving and size is None:
        raise ValueError(f"{name} serves the model: give it a ServingSize (ServingSize.for_catalog)")
    environment = settings_model.model_validate({"service_name": service_name(name), **settings}).to_env()
    construct_id = "".join(part.title() for part in name.split("_"))

    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    # Own role with an inline grant to its own log group, instead of the broad AWS-managed
    # AWSLambdaBasicExecutionRole policy.
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    log_group.grant_write(role)
    checkov.skip_checks(log_group, {"CKV_AWS_158": checkov.LOGS_SERVICE_ENCRYPTED})
    dead_letter_queue = _dead_letter_queue(scope, construct_id) if name in c.ASYNC_FUNCTIONS else None

    function = lambda_.Function(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc"]),
        handler=c.HANDLER,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.X86_64,
        memory_size=size.memory_mb if serving and size else c.MEMORY_MB.get(name, c.DEFAULT_MEMORY_MB),
        ephemeral_storage_size=Size.mebibytes(size.ephemeral_mb) if serving and size else None,
        snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
        if serving and size and size.snap_start
        else None,
        timeout=Duration.seconds(c.TIMEOUT_SECONDS[name]),
        tracing=tracing_mode(name),
        log_group=log_group,
        layers=layers.for_function(),
        environment=environment,
        role=role,
        description=f"Merchandiser {name.replace('_', ' ')}",
        reserved_concurrent_executions=c.RESERVED_CONCURRENCY.get(name),
        dead_letter_queue=dead_letter_queue,
    )
    checkov.skip_checks(function, _checkov_reasons(name))
    Validations.of(function).acknowledge(
        Acknowledgment(
            id="AwsSolutions-L1",
            reason="Pinned to Python 3.12 on purpose: the deps layer ships cp312 manylinux wheels "
            "(numpy, lightgbm, chroma-hnswlib) and pyproject.toml requires Python 3.12.",
        )
    )
    Validations.of(role).acknowledge(
        Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
            "resource-level permissions (tests/infra checks no other action gets Resource '*').",
        )
    )
    return function


def _dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """Where Lambda parks an asynchronous event (an EventBridge rule's) after its two retries fail."""
    queue = sqs.Queue(
        scope,
        f"{construct_id}DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(c.DLQ_RETENTION_DAYS),
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id="AwsSolutions-SQS3",
            reason="This queue is itself a function's dead-letter queue; an alarm fires on its first "
            "message.",
        )
    )
    checkov.skip_checks(queue, {"CKV_AWS_27": checkov.SSE_SQS})
    return queue


def _checkov_reasons(name: str) -> dict[str, str]:
    """The checkov checks that do not apply to function ``name``, with the reason for each."""
    reasons = {"CKV_AWS_117": checkov.NO_VPC, "CKV_AWS_173": checkov.ENVIRONMENT_HAS_NO_SECRETS}
    no_dlq = {
        "event_processor": checkov.STREAM_NO_DLQ,
        "trending_compactor": checkov.SCHEDULED_RETRIED_NO_DLQ,
    }
    if name not in c.ASYNC_FUNCTIONS:
        reasons["CKV_AWS_116"] = no_dlq.get(name, checkov.SYNCHRONOUS_NO_DLQ)
    if name not in c.RESERVED_CONCURRENCY:
        reasons["CKV_AWS_115"] = (
            checkov.STREAM_BOUNDED_CONCURRENCY
            if name == "event_processor"
            else checkov.API_THROTTLED_CONCURRENCY
        )
    return reasons
