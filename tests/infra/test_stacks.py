"""The synthesized templates: data, stream consumer, routes, environments, IAM, rules, cdk-nag."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from pydantic import ValidationError

from merchandiser import settings
from stacks.constants import SERVING_FUNCTIONS
from tests.infra.conftest import STACKS, Synthesized, make_tiny_layers
from tests.routes import ADMIN_ROUTES

REPO_ROOT = Path(__file__).resolve().parents[2]

# Written out here, not imported from stacks/, so the test checks the stacks against the brief.
FUNCTION_SETTINGS: dict[str, type[settings.FunctionSettings]] = {
    "retrieval": settings.ServingSettings,
    "ranking": settings.ServingSettings,
    "reranking": settings.ServingSettings,
    "events-api": settings.EventsApiSettings,
    "catalog": settings.CatalogSettings,
    "experiments": settings.ExperimentsSettings,
    "event-processor": settings.EventProcessorSettings,
    "trending-compactor": settings.TrendingCompactorSettings,
    "start-training": settings.TrainingTriggerSettings,
    "publish": settings.PublishSettings,
    "erasure": settings.ErasureSettings,
    "experiment-report": settings.ExperimentReportSettings,
}
SERVING = {"retrieval", "ranking", "reranking"}
ROUTES = {
    ("GET", "/health"): "retrieval",
    ("GET", "/users/{user_id}/recommendations"): "retrieval",
    ("GET", "/users/{user_id}/candidates"): "retrieval",
    ("GET", "/items/{item_id}/similar"): "retrieval",
    ("GET", "/items/{item_id}/bought-together"): "retrieval",
    ("GET", "/items/popular"): "retrieval",
    ("POST", "/users/{user_id}/rank"): "ranking",
    ("POST", "/users/{user_id}/rerank"): "reranking",
    ("POST", "/events"): "events-api",
    ("PUT", "/items/{item_id}"): "catalog",
    ("DELETE", "/users/{user_id}"): "catalog",
    ("GET", "/model"): "retrieval",
    ("GET", "/users/{user_id}/events"): "retrieval",
    ("GET", "/items"): "retrieval",
    ("GET", "/events/stats"): "retrieval",
    ("GET", "/kpis"): "retrieval",
    ("GET", "/experiments"): "experiments",
    ("PUT", "/experiments/{name}"): "experiments",
    ("GET", "/experiments/{name}"): "experiments",
    ("DELETE", "/experiments/{name}"): "experiments",
    ("GET", "/experiments/{name}/report"): "experiments",
}
# Admin routes: the retailer's back office signs them (SigV4); the IAM work picks them up from here.
ADMIN_FUNCTIONS = {"catalog", "experiments"}
# The only actions allowed on Resource "*": none of them supports resource-level permissions.
WILDCARD_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",  # active tracing on every function
    "xray:PutTelemetryRecords",
    "ecr:GetAuthorizationToken",  # the SageMaker role pulling the training image
    "cloudwatch:PutMetricData",  # the SageMaker role, limited by a cloudwatch:namespace condition
    "cloudfront:CreateInvalidation",  # the CDK's console deployment invalidating the console's cache
    "cloudfront:GetInvalidation",
    # the training state machine's logs: CloudWatch Logs' vended-log delivery takes no resource
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:GetSamplingRules",  # the state machine's tracing
    "xray:GetSamplingTargets",
}


# The CDK's own function that copies console/ to its bucket (stacks/console_stack.py): not one of ours.
CDK_BUCKET_DEPLOYMENT = "CustomCDKBucketDeployment"
SSE_S3 = {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


def template(synthesized: Synthesized, stack: str) -> Template:
    return Template.from_json(synthesized.templates[stack])


def functions_by_key(synthesized: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    """'retrieval' -> (logical id, properties), keyed by the per-function Powertools service name."""
    found = {}
    for stack in STACKS:
        for logical_id, resource in synthesized.resources(stack, "AWS::Lambda::Function").items():
            if logical_id.startswith(CDK_BUCKET_DEPLOYMENT):
                continue
            variables = resource["Properties"]["Environment"]["Variables"]
            found[variables["POWERTOOLS_SERVICE_NAME"].removeprefix("merchandiser-")] = (logical_id, resource)
    return found


def test_tables_have_keys_on_demand_pitr_and_sessions_ttl(synthesized: Synthesized) -> None:
    data = template(synthesized, "Merchandiser-Data")
    data.resource_count_is("AWS::DynamoDB::Table", 5)  # users, items, sessions, counters, experiments
    for key in ("user_id", "item_id", "name"):  # "name": the experiments (experiments.create_table's shape)
        data.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        )
    data.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )


def test_artifacts_bucket_is_private_versioned_logged_and_ssl_only(synthesized: Synthesized) -> None:
    data = template(synthesized, "Merchandiser-Data")
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [SSE_S3]},
        },
    )  # fmt: skip
    policies = synthesized.resources("Merchandiser-Data", "AWS::S3::BucketPolicy")
    assert len(policies) == 2  # artifacts and access-logs buckets
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_stream_is_encrypted_provisioned_with_24h_retention(synthesized: Synthesized) -> None:
    template(synthesized, "Merchandiser-Streaming").has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
            "RetentionPeriodHours": 24,
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "ShardCount": 1,  # the default peak (500 records/s) fits one shard
        },
    )


def test_event_source_mapping_bisects_retries_and_parks_failures_in_the_dlq(synthesized: Synthesized) -> None:
    streaming = template(synthesized, "Merchandiser-Streaming")
    event_processor, _ = functions_by_key(synthesized)["event-processor"]
    queue = next(iter(synthesized.resources("Merchandiser-Streaming", "AWS::SQS::Queue")))
    streaming.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": event_processor},
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 0,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 3,
            "MaximumRecordAgeInSeconds": 3600,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        },
    )
    streaming.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    policy = next(iter(synthesized.resources("Merchandiser-Streaming", "AWS::SQS::QueuePolicy").values()))
    assert any(s["Effect"] == "Deny" for s in policy["Properties"]["PolicyDocument"]["Statement"])


def test_events_and_impressions_are_archived_to_s3_each_under_its_prefix_by_date_gzipped(
    synthesized: Synthesized,
) -> None:
    template(synthesized, "Merchandiser-Streaming").has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamType": "KinesisStreamAsSource",
            "ExtendedS3DestinationConfiguration": Match.object_like(
                {
                    # dynamic partitioning on the record's type (events/ or impressions/), then arrival date
                    "Prefix": "!{partitionKeyFromQuery:table}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"
                    "day=!{timestamp:dd}/",
                    "DynamicPartitioningConfiguration": Match.object_like({"Enabled": True}),
                    "ErrorOutputPrefix": Match.string_like_regexp(
                        r"^events-errors/!\{firehose:error-output-type\}/"
                    ),
                    "CompressionFormat": "GZIP",
                    # what training/channels.py and the report's tables read: *.jsonl.gz, one record per line
                    "FileExtension": ".jsonl.gz",
                    "ProcessingConfiguration": {
                        "Enabled": True,
                        "Processors": [
                            {
                                "Type": "MetadataExtraction",
                                "Parameters": [
                                    {
                                        "ParameterName": "MetadataExtractionQuery",
                                        "ParameterValue": '{table: (if .record_type == "impression" then '
                                        '"impressions" else "events" end)}',
                                    },
                                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                                ],
                            },
                            {
                                "Type": "AppendDelimiterToRecord",
                                "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}],
                            },
                        ],
                    },
                }
            ),
        },
    )


def _function_statements(synthesized: Synthesized, key: str) -> list[dict[str, Any]]:
    """The statements of the policies attached to one function's role."""
    _, resource = functions_by_key(synthesized)[key]
    role = {"Ref": resource["Properties"]["Role"]["Fn::GetAtt"][0]}
    return [
        statement
        for policy in synthesized.all_resources("AWS::IAM::Policy").values()
        if role in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _table_grants(synthesized: Synthesized, function: str) -> dict[str, list[str]]:
    """The DynamoDB actions a function may call, by the table its statement names."""
    grants: dict[str, list[str]] = {}
    for statement in _function_statements(synthesized, function):
        actions = _as_list(statement["Action"])
        if any(action.startswith("dynamodb:") for action in actions):
            resources = json.dumps(statement["Resource"])
            for table in (name for name in TABLES if f"{name}Table" in resources):
                grants[table] = sorted({*grants.get(table, []), *actions})
    return grants


TABLES = ("Users", "Items", "Sessions", "Counters", "Experiments")


def test_event_processor_touches_only_the_sessions_and_counters_tables_with_the_calls_it_makes(
    synthesized: Synthesized,
) -> None:
    assert _table_grants(synthesized, "event-processor") == {
        "Sessions": ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Counters": ["dynamodb:UpdateItem"],  # an ADD per (hour, item) and one on the dirty set
    }


def test_the_trending_compactor_runs_every_minute_on_the_counters_table_alone(
    synthesized: Synthesized,
) -> None:
    assert _table_grants(synthesized, "trending-compactor") == {
        "Counters": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    }
    compactor, resource = functions_by_key(synthesized)["trending-compactor"]
    assert set(resource["Properties"]["Environment"]["Variables"]) >= {"COUNTERS_TABLE"}
    rules = [
        rule["Properties"]
        for rule in synthesized.resources("Merchandiser-Streaming", "AWS::Events::Rule").values()
        if compactor in json.dumps(rule["Properties"]["Targets"])
    ]
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(1 minute)"]


def test_serving_reads_the_trending_summaries_and_nothing_else_of_the_counters(
    synthesized: Synthesized,
) -> None:
    for name in SERVING:
        grants = _table_grants(synthesized, name)
        assert grants["Counters"] == ["dynamodb:BatchGetItem"], name
    assert "Counters" not in _table_grants(synthesized, "catalog")


def test_the_counters_table_is_keyed_by_hour_partition_and_item_with_a_ttl(synthesized: Synthesized) -> None:
    tables = synthesized.resources("Merchandiser-Data", "AWS::DynamoDB::Table")
    counters = next(props["Properties"] for key, props in tables.items() if key.startswith("CountersTable"))
    assert counters["KeySchema"] == [
        {"AttributeName": "bucket", "KeyType": "HASH"},
        {"AttributeName": "item_id", "KeyType": "RANGE"},
    ]
    assert counters["BillingMode"] == "PAY_PER_REQUEST" and counters["SSESpecification"] == {
        "SSEEnabled": True
    }
    assert counters["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert counters["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_catalog_may_write_tombstones_and_knows_the_bucket(synthesized: Synthesized) -> None:
    _, resource = functions_by_key(synthesized)["catalog"]
    assert "ARTIFACTS_BUCKET" in resource["Properties"]["Environment"]["Variables"]
    statements = _function_statements(synthesized, "catalog")
    puts = [s for s in statements if _as_list(s["Action"]) == ["s3:PutObject"]]
    assert len(puts) == 1 and "/events/_tombstones/*" in json.dumps(puts[0]["Resource"])


def test_the_staff_routes_are_signed_and_read_only_the_gate_decisions_and_kpis(
    synthesized: Synthesized,
) -> None:
    stack = "Merchandiser-Serving"
    paths = _resource_paths(synthesized.resources(stack, "AWS::ApiGateway::Resource"))
    signed = {
        (props["HttpMethod"], paths[props["ResourceId"]["Ref"]])
        for props in (
            m["Properties"] for m in synthesized.resources(stack, "AWS::ApiGateway::Method").values()
        )
        if props["AuthorizationType"] == "AWS_IAM"
    }
    assert signed == ADMIN_ROUTES
    _, retrieval = functions_by_key(synthesized)["retrieval"]
    assert "ARTIFACTS_BUCKET" in retrieval["Properties"]["Environment"]["Variables"]
    reads = [
        s for s in _function_statements(synthesized, "retrieval") if _as_list(s["Action"]) == ["s3:GetObject"]
    ]
    # the staff's reads (gate decisions, KPIs) beside the live model's files (every serving function)
    staff = [s for s in reads if "decision.json" in json.dumps(s["Resource"])]
    assert len(staff) == 1 and len(reads) == 2
    objects = json.dumps(staff[0]["Resource"])
    assert "/models/*/decision.json" in objects and "/reports/kpis.json" in objects
    assert not [
        s for s in _function_statements(synthesized, "retrieval") if "s3:PutObject" in _as_list(s["Action"])
    ]


def _resource_paths(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def test_every_route_is_a_lambda_proxy_to_its_function(synthesized: Synthesized) -> None:
    stack = "Merchandiser-Serving"
    paths = _resource_paths(synthesized.resources(stack, "AWS::ApiGateway::Resource"))
    function_of = {logical_id: key for key, (logical_id, _) in functions_by_key(synthesized).items()}
    aliases = synthesized.resources(stack, "AWS::Lambda::Alias")
    routes = {}
    for method in synthesized.resources(stack, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        target = next(
            part["Fn::GetAtt"][0] if "Fn::GetAtt" in part else part["Ref"]
            for part in integration["Uri"]["Fn::Join"][1]
            if isinstance(part, dict)
            and ("Fn::GetAtt" in part or not part.get("Ref", "AWS::").startswith("AWS::"))
        )
        if target in aliases:  # serving routes invoke the `live` alias (blue/green model swaps)
            assert aliases[target]["Properties"]["Name"] == "live"
            target = aliases[target]["Properties"]["FunctionName"]["Ref"]
            assert function_of[target] in SERVING_FUNCTIONS
        else:
            assert function_of[target] not in SERVING_FUNCTIONS
        routes[(props["HttpMethod"], paths[props["ResourceId"]["Ref"]])] = function_of[target]
        assert "RequestValidatorId" in props
    assert routes == ROUTES


def test_stage_v1_logs_traces_and_throttles(synthesized: Synthesized) -> None:
    serving = template(synthesized, "Merchandiser-Serving")
    serving.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": Match.any_value(), "LoggingLevel": "ERROR"})]
            ),
        },
    )
    assert "ApiUrl" in synthesized.templates["Merchandiser-Serving"]["Outputs"]


def _validation_input(variables: dict[str, Any]) -> dict[str, str]:
    """Deploy-time values (Ref, ImportValue, ...) stand in as strings: they resolve to names."""
    return {
        key: value if isinstance(value, str) else f"<deploy-time {key}>" for key, value in variables.items()
    }


def test_every_function_environment_validates_against_its_settings_model(synthesized: Synthesized) -> None:
    functions = functions_by_key(synthesized)
    assert set(functions) == set(FUNCTION_SETTINGS)
    for key, (_, resource) in functions.items():
        variables = resource["Properties"]["Environment"]["Variables"]
        try:
            FUNCTION_SETTINGS[key].model_validate(_validation_input(variables))
        except ValidationError as error:  # extra="forbid": unknown keys fail too
            pytest.fail(f"{key}: environment does not match {FUNCTION_SETTINGS[key].__name__}: {error}")


def test_functions_share_one_shape(synthesized: Synthesized) -> None:
    for key, (_, resource) in functions_by_key(synthesized).items():
        props = resource["Properties"]
        assert props["Runtime"] == "python3.12" and props["Handler"] == "handler.handler"
        assert props["Architectures"] == ["x86_64"]
        # the event processor and the compactor have no upstream sampling decision to follow: they pass
        # tracing through
        passing = key in ("event-processor", "trending-compactor")
        assert props["TracingConfig"] == {"Mode": "PassThrough" if passing else "Active"}, key
        # serving: the catalogue formula's floor at 100k items; the eraser rewrites a model tarball in memory;
        # publish holds every stored profile's digest
        memory = {"erasure": 2048, "publish": 1536}.get(key, 512)
        assert props["MemorySize"] == (1024 if key in SERVING else memory), key
        assert len(props["Layers"]) == 2, key  # deps and core: no layer holds a model
        assert "LoggingConfig" in props  # its own log group, with retention


def _statements(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for where, resource in synthesized.all_resources(resource_type).items():
            found += [(where, s) for s in resource["Properties"]["PolicyDocument"]["Statement"]]
    for where, role in synthesized.all_resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found += [(where, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_statement_grants_every_action_or_any_resource_except_the_documented_ones(
    synthesized: Synthesized,
) -> None:
    statements = _statements(synthesized)
    assert statements
    for where, statement in statements:
        actions = _as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), (where, actions)
        if "*" in _as_list(statement["Resource"]):
            assert set(actions) <= WILDCARD_RESOURCE_ACTIONS, (where, actions)
            if "cloudwatch:PutMetricData" in actions:
                assert "cloudwatch:namespace" in json.dumps(statement.get("Condition", {})), where


def test_start_training_may_only_create_jobs_and_pass_the_training_role(synthesized: Synthesized) -> None:
    training = synthesized.templates["Merchandiser-Training"]["Resources"]
    role = next(
        k for k in training if k.startswith("TrainingRole") and training[k]["Type"] == "AWS::IAM::Role"
    )
    policy = next(k for k in training if k.startswith("StartTrainingRoleDefaultPolicy"))
    statements = training[policy]["Properties"]["PolicyDocument"]["Statement"]
    pass_role = [s for s in statements if "iam:PassRole" in _as_list(s["Action"])]
    assert [s["Resource"] for s in pass_role] == [{"Fn::GetAtt": [role, "Arn"]}]
    assert any("sagemaker:CreateTrainingJob" in _as_list(s["Action"]) for s in statements)


def state_machine(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The training schedule's state machine: its logical id and its definition (Fn::Join resolved to text
    with each reference written as its logical id)."""
    key = next(k for k, v in resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine")
    parts = resources[key]["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(
        part if isinstance(part, str) else str(part.get("Ref") or part.get("Fn::GetAtt", ["?"])[0])
        for part in parts
    )
    return key, json.loads(text)


def test_the_schedule_starts_the_state_machine_that_chooses_the_engine(synthesized: Synthesized) -> None:
    resources = synthesized.templates["Merchandiser-Training"]["Resources"]
    start_training, _ = functions_by_key(synthesized)["start-training"]
    publish, _ = functions_by_key(synthesized)["publish"]
    machine, definition = state_machine(resources)
    # Given the daily rule / Then it starts the state machine (never a function directly)
    rules = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Events::Rule"]
    started = [rule for rule in rules if rule["Targets"][0]["Arn"] == {"Ref": machine}]
    assert [rule["ScheduleExpression"] for rule in started] == ["rate(1 day)"]
    assert not [rule for rule in rules if start_training in json.dumps(rule["Targets"])]
    # And its states: plan (start_training), then the Spark job run and publish when the plan says spark
    states = definition["States"]
    assert definition["StartAt"] == "Plan" and start_training in json.dumps(states["Plan"])
    choice = states["Spark?"]
    assert choice["Choices"] == [{"Variable": "$.engine", "StringEquals": "spark", "Next": "RunSpark"}]
    assert states[choice["Default"]]["Type"] == "Succeed"
    assert states["RunSpark"]["Resource"].endswith(":states:::emr-serverless:startJobRun.sync")
    assert states["RunSpark"]["Parameters"]["ApplicationId.$"] == "$.job_run.ApplicationId"
    assert states["RunSpark"]["Next"] == "Publish" and publish in json.dumps(states["Publish"])
    assert states["Publish"]["Parameters"] == {"model_artifact.$": "$.model_artifact"}


def test_the_emr_serverless_application_stops_when_idle_and_start_training_knows_it(
    synthesized: Synthesized,
) -> None:
    resources = synthesized.templates["Merchandiser-Training"]["Resources"]
    application, properties = next(
        (k, v["Properties"]) for k, v in resources.items() if v["Type"] == "AWS::EMRServerless::Application"
    )
    assert properties["Type"] == "SPARK" and properties["AutoStopConfiguration"]["Enabled"] is True
    assert properties["MaximumCapacity"]["Cpu"] and properties["ReleaseLabel"].startswith("emr-7")
    _, start_training = functions_by_key(synthesized)["start-training"]
    variables = start_training["Properties"]["Environment"]["Variables"]
    assert variables["EMR_APPLICATION_ID"] == {"Fn::GetAtt": [application, "ApplicationId"]}
    assert variables["SPARK_MIN_EVENTS"] == "10000000"


def readable_prefixes(resources: dict[str, Any], role_prefix: str) -> set[str]:
    """The artifacts-bucket prefixes a role's policy may GetObject (``arn...:bucket/<prefix>*``)."""
    policy = next(
        v for k, v in resources.items() if k.startswith(role_prefix) and v["Type"] == "AWS::IAM::Policy"
    )
    found = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if "s3:GetObject" in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                found |= set(re.findall(r"/([a-z-]+/(?:[a-z-]+/)?)\*", json.dumps(resource)))
    return found


def test_both_engines_roles_read_every_channel_their_job_requests_name(synthesized: Synthesized) -> None:
    from merchandiser.publishing import EmrJob, emr_job_run, training_job_request
    from merchandiser.settings import TrainingTriggerSettings

    resources = synthesized.templates["Merchandiser-Training"]["Resources"]
    settings = TrainingTriggerSettings(artifacts_bucket="b", items_table="t", training_role_arn="r",
                                       training_source_uri="s", training_image_uri="i")  # fmt: skip
    now = datetime.now(UTC)
    channels = training_job_request(settings, now, None, "models/")["InputDataConfig"]
    sagemaker = {channel["DataSource"]["S3DataSource"]["S3Uri"].split("/", 3)[3] for channel in channels}
    arguments = emr_job_run(EmrJob("a", "r", "e", "s"), "b", now, None, "models/")["JobDriver"]["SparkSubmit"]
    spark = {value.split("=", 1)[1] for value in arguments["EntryPointArguments"] if "=" in value}
    assert sagemaker == spark
    assert sagemaker <= readable_prefixes(resources, "TrainingRoleDefaultPolicy")
    assert spark <= readable_prefixes(resources, "SparkJobRoleDefaultPolicy")


def test_a_finished_sagemaker_job_invokes_publish(synthesized: Synthesized) -> None:
    training = template(synthesized, "Merchandiser-Training")
    publish, _ = functions_by_key(synthesized)["publish"]
    training.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Training Job State Change"],
                    "detail": Match.object_like({"TrainingJobStatus": ["Completed"]}),
                }
            ),
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [publish, "Arn"]}})],
        },
    )


def test_monitoring_has_dashboard_alarms_and_topic(synthesized: Synthesized) -> None:
    monitoring = template(synthesized, "Merchandiser-Monitoring")
    monitoring.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    # + one per asynchronous function's DLQ (start_training, publish, experiment_report), + CTR against its
    # baseline per surface
    monitoring.resource_count_is("AWS::CloudWatch::Alarm", 3 + 3 + 6)
    monitoring.resource_count_is("AWS::SNS::Topic", 1)
    for metric in ("5XXError", "IteratorAge", "ApproximateNumberOfMessagesVisible"):
        monitoring.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": metric})


def test_outputs_name_what_the_local_twin_needs(synthesized: Synthesized) -> None:
    outputs = {key for t in synthesized.templates.values() for key in t.get("Outputs", {})}
    assert {
        "UsersTableName", "ItemsTableName", "SessionsTableName", "ArtifactsBucketName", "EventsStreamName",
        "DeadLetterQueueUrl", "ApiUrl", "RestApiId", "RetrievalFunctionName", "PublishFunctionName",
    } <= outputs  # fmt: skip


def test_cdk_nag_is_active_and_an_unacknowledged_finding_fails_synthesis(tmp_path: Path) -> None:
    """The session fixture synthesized with the plugin and did not raise; here it must raise."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path))
    sqs.Queue(cdk.Stack(app, "Bare"), "QueueWithoutDlqOrSsl")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="Validation"):
        app.synth()


def test_missing_layer_folder_names_the_command_that_builds_it(tmp_path: Path) -> None:
    from app import build_app
    from stacks.functions import LayersNotBuiltError

    (tmp_path / "core").mkdir()
    with pytest.raises(LayersNotBuiltError) as raised:
        build_app(outdir=str(tmp_path / "out"), layers_dir=tmp_path)
    message = str(raised.value)
    assert "deps" in message and "make layers" in message
    assert "python -m layers.build deps --out" in message


def test_python_app_py_synthesizes_the_five_templates(tmp_path: Path) -> None:
    layers = make_tiny_layers(tmp_path / "layers")
    outdir = tmp_path / "cdk.out"
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"merchandiser:layersDir": str(layers)}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in outdir.glob("*.template.json")) == sorted(
        f"{s}.template.json" for s in STACKS
    )


def test_the_archive_eraser_runs_daily_and_may_rewrite_only_what_can_hold_a_shopper(
    synthesized: Synthesized,
) -> None:
    rules = synthesized.resources("Merchandiser-Training", "AWS::Events::Rule").values()
    daily = [rule for rule in rules if rule["Properties"].get("ScheduleExpression") == "rate(1 day)"]
    assert "Erasure" in json.dumps([rule["Properties"]["Targets"] for rule in daily])
    granted = json.dumps([s for where, s in _statements(synthesized) if "ErasureRole" in where])
    for prefix in (
        "events/*",
        "impressions/*",
        "catalog/users/*",
        "models/*",
        "training-output/*",
        "erasure/state.json*",
    ):
        assert prefix in granted, prefix
    assert "catalog/items/*" not in granted and "dynamodb:" not in granted
