"""The REST API and the functions behind it (retrieval, ranking, reranking, events_api, catalog)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from merchandiser.settings import CatalogSettings, EventsApiSettings, ServingSettings
from merchandiser.store import DECISION_FILE, KPIS_KEY, MODELS_PREFIX, TOMBSTONES_PREFIX
from stacks import constants as c
from stacks.functions import SERVING_ALIAS, SharedLayers, SwapTargets, merchandiser_function
from stacks.permissions import (
    TABLE_READ,
    TABLE_READ_WRITE,
    allow_objects,
    allow_tables,
    bucket_arn_in_findings,
)

# Server-to-server routes: the retailer's back office signs them with SigV4 (IAM authorization).
IAM_AUTHORIZED_FUNCTIONS = frozenset({"catalog"})


class MerchandiserApi(Construct):
    """RestApi with stage v1: access logs (JSON), X-Ray, throttling, request validation."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=c.APP_NAME,
            description="Merchandiser recommendations, events and catalogue API",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name=c.API_STAGE,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                throttling_rate_limit=c.API_THROTTLE_RATE,
                throttling_burst_limit=c.API_THROTTLE_BURST,
            ),
        )  # fmt: skip
        self.validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        cloud_watch_role = self.rest_api.node.find_child("CloudWatchRole")
        Validations.of(cloud_watch_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="API Gateway's account-level logging role: AWS documents this managed policy for it "
                "and it only allows CloudWatch Logs writes.",
            )
        )
        Validations.of(self.rest_api.deployment_stage).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="A WAF web ACL costs per ACL and rule; the stage has throttling, and a retailer "
                "attaches its existing storefront ACL at deploy time.",
            )
        )

    def add_route(self, http_method: str, path: str, function: lambda_.IFunction, iam_auth: bool) -> None:
        resource = self.rest_api.root.resource_for_path(path)
        parameters = {
            f"method.request.path.{p.strip('{}')}": True for p in path.split("/") if p.startswith("{")
        }
        method = resource.add_method(
            http_method,
            apigateway.LambdaIntegration(function, proxy=True, allow_test_invoke=False),
            request_validator=self.validator,
            request_parameters=parameters or None,
            authorization_type=apigateway.AuthorizationType.IAM
            if iam_auth
            else apigateway.AuthorizationType.NONE,
        )
        if iam_auth:
            Validations.of(method).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-COG4",
                    reason="Back-office or staff route signed with SigV4 (IAM authorization): servers sign "
                    "with their role, the staff console with the IAM credentials its Cognito identity pool "
                    "gives signed-in staff (stacks/console_stack.py), so no Cognito authorizer here.",
                )
            )
            return
        Validations.of(method).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="Public storefront route: anonymous shoppers ask for recommendations and send "
                "events; abuse is bounded by stage throttling.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Public storefront route for anonymous shoppers: no user pool to authorize against.",
            ),
        )


class ServingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        users_table: dynamodb.ITable,
        items_table: dynamodb.ITable,
        sessions_table: dynamodb.ITable,
        events_stream: kinesis.IStream,
        artifacts_bucket: s3.IBucket,
        layers_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        layers = SharedLayers(self, "Layers", layers_dir, with_model=True)
        tables = {
            "users_table": users_table.table_name,
            "items_table": items_table.table_name,
            "sessions_table": sessions_table.table_name,
        }
        # retrieval also serves the staff routes, which read the gate decisions and the KPIs
        staff_reads = {"retrieval": {"artifacts_bucket": artifacts_bucket.bucket_name}}
        self.functions: dict[str, lambda_.Function] = {
            name: merchandiser_function(
                self, name, ServingSettings, layers, **tables, **staff_reads.get(name, {})
            )
            for name in c.SERVING_FUNCTIONS
        }
        self.functions["retrieval"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    artifacts_bucket.arn_for_objects(f"{MODELS_PREFIX}*/{DECISION_FILE}"),
                    artifacts_bucket.arn_for_objects(KPIS_KEY),
                ],
            )
        )
        Validations.of(self.functions["retrieval"].role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{bucket_arn_in_findings(artifacts_bucket)}/"
                f"{MODELS_PREFIX}*/{DECISION_FILE}]",
                reason="GET /model reads the gate decision of the served model, whose version is known only "
                "at run time: one file name under every model version, read only.",
            )
        )
        for name in c.SERVING_FUNCTIONS:
            allow_tables(self.functions[name], [users_table, items_table, sessions_table], TABLE_READ)
        # Blue/green: API Gateway invokes the serving functions through their `live` alias; the publish
        # step moves it to a new version with a new model layer (merchandiser.model_swap).
        self.aliases: dict[str, lambda_.Alias] = {
            name: lambda_.Alias(
                self,
                f"{self.functions[name].node.id}LiveAlias",
                alias_name=SERVING_ALIAS,
                version=self.functions[name].current_version,
            )
            for name in c.SERVING_FUNCTIONS
        }
        self.swap_targets = SwapTargets(
            functions=tuple(self.functions[name] for name in c.SERVING_FUNCTIONS),
            aliases=tuple(self.aliases[name] for name in c.SERVING_FUNCTIONS),
            model_layer_name=layers.model_layer_name,
            kept_layers=(layers.deps, layers.core),
        )

        events_api = merchandiser_function(
            self, "events_api", EventsApiSettings, layers, events_stream=events_stream.stream_name
        )
        events_api.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[events_stream.stream_arn]
            )
        )
        catalog = merchandiser_function(
            self, "catalog", CatalogSettings, layers, artifacts_bucket=artifacts_bucket.bucket_name, **tables
        )
        allow_tables(catalog, [users_table, items_table, sessions_table], TABLE_READ_WRITE)
        allow_objects(
            catalog,
            artifacts_bucket,
            [TOMBSTONES_PREFIX],
            ["s3:PutObject"],
            "DELETE /users/{id} writes one tombstone per erased shopper, named after the shopper.",
        )
        self.functions.update(events_api=events_api, catalog=catalog)

        self.api = MerchandiserApi(self, "Api")
        for http_method, path, name in c.API_ROUTES:
            target = self.aliases.get(name, self.functions[name])
            staff = (http_method, path, name) in c.STAFF_ROUTES
            self.api.add_route(http_method, path, target, staff or name in IAM_AUTHORIZED_FUNCTIONS)

        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url)
        CfnOutput(self, "RestApiId", value=self.api.rest_api.rest_api_id)
        for function in self.functions.values():
            CfnOutput(self, f"{function.node.id}FunctionName", value=function.function_name)
