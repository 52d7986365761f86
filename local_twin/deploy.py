"""Deploys the synthesized CDK app into moto, the way ``cdk deploy`` would into an account.

``deploy_to_moto`` synthesizes the real app in-process (``app.build_app``), publishes every file
asset named in the ``*.assets.json`` manifests to the bootstrap bucket named there (directory
assets zipped here, as the CDK CLI would), creates the bootstrap-version SSM parameter and then
creates each stack through moto's CloudFormation in dependency order. The templates are exactly the
ones ``cdk deploy`` would use: the SSM parameter is created instead of switching to a synthesizer
without the bootstrap-version rule, so the twin does not deploy a different app.

The deps layer (about 170 MB of wheels) is deliberately not built for the twin: moto cannot run
Lambda code without Docker, so the twin runs the real handlers in-process with the project's
virtualenv and only needs the environment each function was created with. When ``layers_dir/deps``
is missing, an empty folder holding a ``NOT-BUILT.txt`` marker says so; core and model are used as
given (the twin passes the real core layer). cdk-nag is switched off for this
synth (``merchandiser:cdkNag=false``): acknowledgments are metadata only, the templates are the same,
and tests/infra runs the checks.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import boto3

REGION = "us-east-1"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
DEPS_MARKER = "NOT-BUILT.txt"
# Output key in the stacks -> function key used by the handlers (lambdas/<key>/).
FUNCTION_OUTPUTS = {
    "RetrievalFunctionName": "retrieval",
    "RankingFunctionName": "ranking",
    "RerankingFunctionName": "reranking",
    "EventsApiFunctionName": "events_api",
    "CatalogFunctionName": "catalog",
    "ExperimentsFunctionName": "experiments",
    "EventProcessorFunctionName": "event_processor",
    "TrendingCompactorFunctionName": "trending_compactor",
    "StartTrainingFunctionName": "start_training",
    "PublishFunctionName": "publish",
    "ErasureFunctionName": "erasure",
    "ExperimentReportFunctionName": "experiment_report",
}


class TwinDeployError(RuntimeError):
    """A stack did not reach CREATE_COMPLETE in moto."""


@dataclass(frozen=True)
class TwinResources:
    """Physical names of what the stacks created in moto, read from the stack outputs."""

    users_table: str
    items_table: str
    sessions_table: str
    counters_table: str
    experiments_table: str
    artifacts_bucket: str
    events_stream: str
    dead_letter_queue_url: str
    rest_api_id: str
    api_url: str
    training_role_arn: str
    training_source_uri: str
    function_names: Mapping[str, str]  # function key (e.g. "retrieval") -> physical name
    stack_outputs: Mapping[str, Mapping[str, str]] = field(repr=False)
    _environments: Mapping[str, Mapping[str, str]] = field(repr=False)  # by function key

    def environment_for(self, function_name: str) -> dict[str, str]:
        """The environment a function was created with; ``function_name`` is a key or a physical name."""
        keys = {name: key for key, name in self.function_names.items()}
        key = keys.get(function_name, function_name)
        if key not in self._environments:
            raise KeyError(f"no function {function_name!r}; known: {sorted(self.function_names)}")
        return dict(self._environments[key])

    def environments(self) -> dict[str, dict[str, str]]:
        """Every function's environment, by function key."""
        return {key: dict(env) for key, env in self._environments.items()}


def prepare_twin_layers(layers_dir: Path) -> Path:
    """Makes sure every layer folder exists; a missing deps layer becomes a marked empty folder."""
    deps = layers_dir / "deps"
    if not deps.is_dir():
        (deps / "python").mkdir(parents=True, exist_ok=True)
        (deps / DEPS_MARKER).write_text(
            "Not built: the local twin runs the handlers in-process with the project's virtualenv.\n"
            "Build the real layer with `make layers` (python -m layers.build deps --out build/layers/deps).\n"
        )
    (layers_dir / "core").mkdir(parents=True, exist_ok=True)
    return layers_dir


def synthesize(outdir: Path, layers_dir: Path) -> Path:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before jsii starts
    from app import build_app  # the CDK app lives at the repo root

    # no console stack: `merchandiser console` serves console/ against the twin (moto hosts no CloudFront)
    context = {"merchandiser:cdkNag": "false", "merchandiser:console": "false"}
    build_app(outdir=str(outdir), layers_dir=layers_dir, context=context).synth()
    return outdir


def _zip_directory(source: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())
    return target


def publish_assets(s3: Any, assembly: Path, account: str, region: str) -> int:
    """Uploads every file asset to its destination bucket (created on first use). Returns the count.

    An asset shared by several stacks (the layers) has one hash and is uploaded once.
    """
    buckets: set[str] = set()
    uploaded: set[tuple[str, str]] = set()
    for manifest in sorted(assembly.glob("*.assets.json")):
        for asset in json.loads(manifest.read_text()).get("files", {}).values():
            for destination in asset["destinations"].values():
                bucket = destination["bucketName"].replace("${AWS::AccountId}", account)
                bucket = bucket.replace("${AWS::Region}", region)
                if (bucket, destination["objectKey"]) in uploaded:
                    continue
                if bucket not in buckets:
                    s3.create_bucket(Bucket=bucket)
                    buckets.add(bucket)
                source = assembly / asset["source"]["path"]
                if asset["source"].get("packaging") == "zip" and source.is_dir():
                    source = _zip_directory(source, assembly / f"{source.name}.twin.zip")
                s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=source.read_bytes())
                uploaded.add((bucket, destination["objectKey"]))
    return len(uploaded)


def stacks_in_order(assembly: Path) -> list[tuple[str, Path]]:
    """(stack name, template) for every stack, dependencies first."""
    artifacts = json.loads((assembly / "manifest.json").read_text())["artifacts"]
    stacks = {
        artifact_id: artifact
        for artifact_id, artifact in artifacts.items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    graph = {sid: [d for d in stacks[sid].get("dependencies", []) if d in stacks] for sid in stacks}
    ordered = TopologicalSorter(graph).static_order()
    return [
        (stacks[sid].get("displayName", sid), assembly / stacks[sid]["properties"]["templateFile"])
        for sid in ordered
    ]


def apply_time_to_live(cloudformation: Any, dynamodb: Any, stack_name: str, template: dict[str, Any]) -> None:
    """moto's CloudFormation ignores ``TimeToLiveSpecification``; set it the way AWS would have."""
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    }
    for logical_id, resource in template["Resources"].items():
        ttl = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource["Type"] == "AWS::DynamoDB::Table" and ttl and logical_id in physical:
            dynamodb.update_time_to_live(
                TableName=physical[logical_id],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
            )


def create_stacks(cloudformation: Any, dynamodb: Any, assembly: Path) -> dict[str, dict[str, str]]:
    """Creates each stack and returns its outputs by stack name."""
    outputs: dict[str, dict[str, str]] = {}
    for stack_name, template_file in stacks_in_order(assembly):
        body = template_file.read_text()
        cloudformation.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=CAPABILITIES)
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise TwinDeployError(
                f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}"
            )
        apply_time_to_live(cloudformation, dynamodb, stack_name, json.loads(body))
        outputs[stack_name] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs


def deploy_to_moto(endpoint_url: str, workdir: Path, layers_dir: Path) -> TwinResources:
    """Synthesizes the app into ``workdir/cdk.out`` and deploys it into the moto server at ``endpoint_url``.

    That server must carry ``local_twin.moto_extensions`` (``local_twin.moto_process`` does): without
    them the serving functions' ``live`` aliases do not exist. Needs no network and no Docker; returns
    the physical names from the stack outputs.
    """
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", REGION),
    )
    region = session.region_name or REGION

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    assembly = synthesize(workdir / "cdk.out", prepare_twin_layers(layers_dir))
    account = client("sts").get_caller_identity()["Account"]
    publish_assets(client("s3"), assembly, account, region)
    client("ssm").put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )
    outputs = create_stacks(client("cloudformation"), client("dynamodb"), assembly)
    flat = {key: value for stack in outputs.values() for key, value in stack.items()}

    function_names = {key: flat[output] for output, key in FUNCTION_OUTPUTS.items()}
    lambda_client = client("lambda")
    environments = {
        key: lambda_client.get_function_configuration(FunctionName=name)
        .get("Environment", {})
        .get("Variables", {})
        for key, name in function_names.items()
    }
    return TwinResources(
        users_table=flat["UsersTableName"],
        items_table=flat["ItemsTableName"],
        sessions_table=flat["SessionsTableName"],
        counters_table=flat["CountersTableName"],
        experiments_table=flat["ExperimentsTableName"],
        artifacts_bucket=flat["ArtifactsBucketName"],
        events_stream=flat["EventsStreamName"],
        dead_letter_queue_url=flat["DeadLetterQueueUrl"],
        rest_api_id=flat["RestApiId"],
        api_url=flat["ApiUrl"],
        training_role_arn=flat["TrainingRoleArn"],
        training_source_uri=flat["TrainingSourceUri"],
        function_names=MappingProxyType(function_names),
        stack_outputs=MappingProxyType({name: MappingProxyType(o) for name, o in outputs.items()}),
        _environments=MappingProxyType({k: MappingProxyType(v) for k, v in environments.items()}),
    )
