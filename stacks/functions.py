"""The one helper that builds every Lambda function, and the layers they share.

Each stack that holds functions creates its own ``LayerVersion`` resources from the same layer
folders (the asset is uploaded once, content-addressed). Sharing one layer through a cross-stack
export would block every layer update: CloudFormation refuses to change an export in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
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
SERVING_ALIAS = "live"  # what API Gateway invokes; the publish step moves it (merchandiser.publishing.swap)


@dataclass(frozen=True)
class SwapTargets:
    """What the publish step switches on a promotion: the serving functions and their aliases, the
    model layer it publishes new versions of, and the layers each function keeps."""

    functions: tuple[lambda_.IFunction, ...]
    aliases: tuple[lambda_.IAlias, ...]
    model_layer_name: str
    kept_layers: tuple[lambda_.ILayerVersion, ...]


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
    """deps + core layers for every function; the model layer only where ``with_model``."""

    def __init__(self, scope: Construct, construct_id: str, layers_dir: Path, with_model: bool) -> None:
        super().__init__(scope, construct_id)
        folders = check_layers_dir(layers_dir)
        self.deps = self._layer("Deps", folders["deps"], "Pinned runtime dependencies (numpy, lightgbm, ...)")
        self.core = self._layer("Core", folders["core"], "The merchandiser core library")
        # A known name (unique per stack, so per deployment): publish adds versions to this layer.
        self.model_layer_name = f"{Stack.of(self).stack_name}-model"
        self.model = (
            self._layer(
                "Model", folders["model"], "Trained model and index (/opt/model)", name=self.model_layer_name
            )
            if with_model
            else None
        )

    def _layer(
        self, construct_id: str, folder: Path, description: str, name: str | None = None
    ) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            construct_id,
            layer_version_name=name,
            code=lambda_.Code.from_asset(str(folder), exclude=["__pycache__", "*.pyc", ".stamp"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description=description,
        )

    def for_function(self, serving: bool) -> list[lambda_.ILayerVersion]:
        layers: list[lambda_.ILayerVersion] = [self.deps, self.core]
        if serving:
            if self.model is None:
                raise ValueError("serving functions need the model layer: SharedLayers(with_model=True)")
            layers.append(self.model)
        return layers


def service_name(function_name: str) -> str:
    return f"{c.SERVICE_PREFIX}-{function_name.replace('_', '-')}"


def merchandiser_function(
    scope: Construct,
    name: str,
    settings_model: type[FunctionSettings],
    layers: SharedLayers,
    **settings: Any,
) -> lambda_.Function:
    """Builds function ``name`` from ``lambdas/<name>/`` with the environment of ``settings_model``.

    ``settings`` are the model's fields (CDK tokens are fine for str fields); the model validates
    them at synth time, so a missing or unknown setting fails here, not in Lambda.
    """
    code_dir = LAMBDAS_DIR / name
    if not code_dir.is_dir():
        raise FileNotFoundError(f"function code folder {code_dir} does not exist")
    serving = name in c.SERVING_FUNCTIONS
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
        memory_size=c.MEMORY_MB.get(name, c.SERVING_MEMORY_MB if serving else c.DEFAULT_MEMORY_MB),
        timeout=Duration.seconds(c.TIMEOUT_SECONDS[name]),
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        layers=layers.for_function(serving),
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
            reason="Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
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
    if name not in c.ASYNC_FUNCTIONS:
        reasons["CKV_AWS_116"] = (
            checkov.STREAM_NO_DLQ if name == "event_processor" else checkov.SYNCHRONOUS_NO_DLQ
        )
    if name not in c.RESERVED_CONCURRENCY:
        reasons["CKV_AWS_115"] = (
            checkov.STREAM_BOUNDED_CONCURRENCY
            if name == "event_processor"
            else checkov.API_THROTTLED_CONCURRENCY
        )
    return reasons
