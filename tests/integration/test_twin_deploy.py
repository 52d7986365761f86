"""The synthesized app deployed into a moto server: every resource the twin needs exists."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from layers.build import build_core
from local_twin.deploy import DEPS_MARKER, TwinResources, deploy_to_moto
from local_twin.gateway_auth import MethodAccess, method_access
from local_twin.moto_process import MotoProcess
from stacks.constants import API_KEY, API_ROUTES, IAM, ROUTE_ACCESS

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = MotoProcess.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def deployed(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TwinResources, Path, float]:
    saved = dict(os.environ)
    os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    try:
        workdir = tmp_path_factory.mktemp("twin")
        layers = workdir / "layers"
        build_core(layers / "core")
        started = time.perf_counter()
        resources = deploy_to_moto(moto_endpoint, workdir, layers)
        return resources, layers, time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


def test_deploy_creates_every_resource_under_the_names_it_returns(
    moto_endpoint: str, deployed: tuple[TwinResources, Path, float]
) -> None:
    resources, _, seconds = deployed
    print(f"\ndeploy_to_moto: {seconds:.1f} s")
    dynamodb = client(moto_endpoint, "dynamodb")
    for table in (
        resources.users_table,
        resources.items_table,
        resources.sessions_table,
        resources.counters_table,
        resources.experiments_table,
    ):
        assert dynamodb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    for table in (resources.sessions_table, resources.counters_table):
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == "expires_at"
    client(moto_endpoint, "s3").head_bucket(Bucket=resources.artifacts_bucket)
    stream = client(moto_endpoint, "kinesis").describe_stream_summary(StreamName=resources.events_stream)
    assert stream["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    client(moto_endpoint, "sqs").get_queue_attributes(QueueUrl=resources.dead_letter_queue_url)
    assert client(moto_endpoint, "apigateway").get_rest_api(restApiId=resources.rest_api_id)["name"]


def test_every_function_exists_with_the_environment_it_returns(
    moto_endpoint: str, deployed: tuple[TwinResources, Path, float]
) -> None:
    resources, _, _ = deployed
    lambda_client = client(moto_endpoint, "lambda")
    assert set(resources.function_names) == {
        "retrieval", "ranking", "reranking", "events_api", "catalog", "experiments", "event_processor",
        "trending_compactor", "start_training", "publish", "experiment_report", "erasure",
    }  # fmt: skip
    for key, name in resources.function_names.items():
        configuration = lambda_client.get_function_configuration(FunctionName=name)
        assert configuration["Handler"] == "handler.handler"
        assert resources.environment_for(key) == resources.environment_for(name)
        assert resources.environment_for(key) == configuration["Environment"]["Variables"]
    serving = resources.environment_for("retrieval")
    assert serving["USERS_TABLE"] == resources.users_table  # cross-stack references resolved
    assert resources.environment_for("events_api")["EVENTS_STREAM"] == resources.events_stream
    # every served page's impression goes on the same stream; the running experiments come from their table
    assert serving["EVENTS_STREAM"] == resources.events_stream
    assert serving["EXPERIMENTS_TABLE"] == resources.experiments_table
    assert resources.environment_for("experiments")["EXPERIMENTS_TABLE"] == resources.experiments_table
    assert (
        resources.environment_for("event_processor")["DEAD_LETTER_QUEUE_URL"]
        == resources.dead_letter_queue_url
    )
    # the trending counts: written by the processor, summarised by the compactor, read by serving
    for key in ("event_processor", "trending_compactor", "retrieval"):
        assert resources.environment_for(key)["COUNTERS_TABLE"] == resources.counters_table


def test_event_source_mapping_connects_the_stream_to_the_event_processor(
    moto_endpoint: str, deployed: tuple[TwinResources, Path, float]
) -> None:
    resources, _, _ = deployed
    mappings = client(moto_endpoint, "lambda").list_event_source_mappings(
        FunctionName=resources.function_names["event_processor"]
    )["EventSourceMappings"]
    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"].endswith(f":stream/{resources.events_stream}")


def test_the_api_in_moto_routes_every_path_to_a_function(
    moto_endpoint: str, deployed: tuple[TwinResources, Path, float]
) -> None:
    resources, _, _ = deployed
    apigateway = client(moto_endpoint, "apigateway")
    items = apigateway.get_resources(restApiId=resources.rest_api_id, embed=["methods"])["items"]
    routes = {(method, item["path"]) for item in items for method in item.get("resourceMethods", {})}
    assert routes == {(method, path) for method, path, _ in API_ROUTES}


def test_the_api_in_moto_carries_each_methods_credentials_as_declared(
    moto_endpoint: str, deployed: tuple[TwinResources, Path, float]
) -> None:
    # Given the RestApi CloudFormation created in moto, When the twin reads what each method requires
    resources, _, _ = deployed
    found = method_access(client(moto_endpoint, "apigateway"), resources.rest_api_id)
    # Then it is what stacks/constants.py declares: the key on shopper routes, IAM on admin routes
    expected = {
        route: MethodAccess(access == API_KEY, "AWS_IAM" if access == IAM else "NONE")
        for route, access in ROUTE_ACCESS.items()
    }
    assert found == expected


def test_deps_layer_is_a_marked_placeholder(deployed: tuple[TwinResources, Path, float]) -> None:
    _, layers, _ = deployed
    assert (layers / "deps" / DEPS_MARKER).is_file()
