"""The REST API and the functions behind it (retrieval, ranking, reranking, events_api, catalog,
experiments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnOutput, RemovalPolicy, Size, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_xray as xray
from constructs import Construct

from merchandiser.experiments import REPORTS_PREFIX
from merchandiser.settings import CatalogSettings, EventsApiSettings, ExperimentsSettings, ServingSettings
from merchandiser.store import DECISION_FILE, KPIS_KEY, MODELS_PREFIX, PRODUCTION_POINTER, TOMBSTONES_PREFIX
from stacks import checkov_skips as checkov
from stacks import constants as c
from stacks.functions import SERVING_ALIAS, ServingSize, SharedLayers, SwapTargets, merchandiser_function
from stacks.model_canary import ModelCanary
from stacks.permissions import (
    COUNTER_READ_ACTIONS,
    TABLE_READ,
    TABLE_READ_WRITE,
    allow_objects,
    allow_tables,
    bucket_arn_in_findings,
)

# What the experiments function calls on its table (list = Scan; stop = GetItem + PutItem).
EXPERIMENTS_ADMIN_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan")
# What serving reads of it: the running experiments, one Scan per container per cache period.
EXPERIMENTS_SERVING_ACTIONS = ("dynamodb:Scan",)
# API Gateway's own refusals (no key, no signature, throttled, ...) get the API's error envelope
# {"error": CODE, "message": TEXT} instead of {"message": ...}: (response type, status, code).
GATEWAY_ERRORS = (
    (apigateway.ResponseType.INVALID_API_KEY, "403", "FORBIDDEN"),
    (apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403", "FORBIDDEN"),
    (apigateway.ResponseType.INVALID_SIGNATURE, "403", "FORBIDDEN"),
    (apigateway.ResponseType.EXPIRED_TOKEN, "403", "FORBIDDEN"),
    (apigateway.ResponseType.ACCESS_DENIED, "403", "FORBIDDEN"),
    (apigateway.ResponseType.UNAUTHORIZED, "401", "UNAUTHORIZED"),
    (apigateway.ResponseType.THROTTLED, "429", "TOO_MANY_REQUESTS"),
    (apigateway.ResponseType.QUOTA_EXCEEDED, "429", "TOO_MANY_REQUESTS"),
    (apigateway.ResponseType.REQUEST_TOO_LARGE, "413", "PAYLOAD_TOO_LARGE"),
    # any other refusal keeps its status; its code is API Gateway's response type (e.g. BAD_REQUEST_BODY)
    (apigateway.ResponseType.DEFAULT_4_XX, None, "$context.error.responseType"),
    (apigateway.ResponseType.DEFAULT_5_XX, None, "$context.error.responseType"),
)


def route_access(http_method: str, path: str) -> str:
    """Who may call a route (constants.ROUTE_ACCESS); a route declared without an entry fails the synth."""
    try:
        return c.ROUTE_ACCESS[(http_method, path)]
    except KeyError:
        raise KeyError(
            f"{http_method} {path} has no entry in stacks/constants.py ROUTE_ACCESS: say whether the"
            " storefront (API_KEY), the back office (IAM) or anyone (OPEN) may call it"
        ) from None


class MerchandiserApi(Construct):
    """RestApi with stage v1: access logs (JSON), X-Ray sampled by the stage's own rule, gzip'd answers,
    throttling, request validation, the storefront's API key and usage plan, and API Gateway's own errors in
    the API's JSON error envelope."""

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
            min_compression_size=Size.bytes(c.API_MIN_COMPRESSION_BYTES),
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
        self.sampling_rule = self._sampling_rule()
        self.validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        checkov.skip_checks(access_logs, {"CKV_AWS_158": checkov.LOGS_SERVICE_ENCRYPTED})
        checkov.skip_checks(
            self.rest_api.deployment_stage,
            {
                "CKV_AWS_120": "Every answer is personal (a shopper's page, a fresh recommendation_id) or a "
                "write: a stage cache would serve one shopper's page to another, or stale stock; its cache "
                "cluster is billed per hour."
            },
        )
        for response_type, status, code in GATEWAY_ERRORS:
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=status,
                templates={
                    "application/json": f'{{"error": "{code}", "message": $context.error.messageString}}'
                },
            )
        self.storefront_key = self._storefront_key()
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

    def _sampling_rule(self) -> xray.CfnSamplingRule:
        """The X-Ray sampling rule of stage v1 (constants XRAY_SAMPLING_*): API Gateway decides for each
        request and the functions behind it follow the decision in the trace header (Lambda's own sampling
        cannot be configured). Matched by the stage's service name ({api name}/{stage}) and its ARN."""
        stage = self.rest_api.deployment_stage
        return xray.CfnSamplingRule(
            self,
            "SamplingRule",
            sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
                rule_name=c.XRAY_SAMPLING_RULE_NAME,
                priority=c.XRAY_SAMPLING_PRIORITY,
                fixed_rate=c.XRAY_SAMPLING_RATE,
                reservoir_size=c.XRAY_SAMPLING_RESERVOIR,
                service_name=f"{c.APP_NAME}/{c.API_STAGE}",
                service_type="AWS::ApiGateway::Stage",
                resource_arn=stage.stage_arn,
                host="*",
                http_method="*",
                url_path="*",
                version=1,
            ),
        )

    def _storefront_key(self) -> apigateway.IApiKey:
        """The storefront's API key (API Gateway generates its value) in a usage plan on stage v1."""
        key = self.rest_api.add_api_key("StorefrontKey", description="The storefront's key (x-api-key)")
        plan = self.rest_api.add_usage_plan(
            "StorefrontPlan",
            description="The storefront: rate, burst and daily quota of its API key",
            throttle=apigateway.ThrottleSettings(
                rate_limit=c.USAGE_PLAN_RATE, burst_limit=c.USAGE_PLAN_BURST
            ),
            quota=apigateway.QuotaSettings(limit=c.USAGE_PLAN_QUOTA_PER_DAY, period=apigateway.Period.DAY),
            api_stages=[
                apigateway.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)
            ],
        )
        plan.add_api_key(key)
        return key

    def add_route(self, http_method: str, path: str, function: lambda_.IFunction) -> None:
        access = route_access(http_method, path)
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
            if access == c.IAM
            else apigateway.AuthorizationType.NONE,
            api_key_required=access == c.API_KEY,
        )
        if access == c.IAM:
            Validations.of(method).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-COG4",
                    reason="Back-office or staff route signed with SigV4 (IAM authorization): servers sign "
                    "with their role, the staff console with the IAM credentials its Cognito identity pool "
                    "gives signed-in staff (stacks/console_stack.py), so no Cognito authorizer here.",
                )
            )
            return
        if access == c.OPEN:
            Validations.of(method).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG4",
                    reason="The health check (model version, catalogue size) is open to load balancers and "
                    "uptime monitors; it returns no customer data and stage throttling bounds it.",
                ),
                Acknowledgment(
                    id="AwsSolutions-COG4",
                    reason="The open health check: no user pool to authorize against.",
                ),
            )
            checkov.skip_checks(
                method,
                {
                    "CKV_AWS_59": "The health check is open to load balancers and uptime monitors; it "
                    "returns the model version and catalogue size, no customer data, and stage throttling "
                    "bounds it."
                },
            )
            return
        Validations.of(method).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="Storefront route: the storefront authenticates with its API key and usage plan "
                "(rate, burst, daily quota); the shoppers it serves are anonymous.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Storefront route for anonymous shoppers, authenticated by the storefront's API key: "
                "no user pool to authorize against.",
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
        counters_table: dynamodb.ITable,
        experiments_table: dynamodb.ITable,
        events_stream: kinesis.IStream,
        artifacts_bucket: s3.IBucket,
        layers_dir: Path,
        catalog_items: int = c.DEFAULT_CATALOG_ITEMS,
        snap_start: str = c.DEFAULT_SNAPSTART,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.size = ServingSize.for_catalog(catalog_items, snap_start)  # a bad setting fails before anything
        layers = SharedLayers(self, "Layers", layers_dir)
        self.model_parameter = c.live_model_parameter(self.stack_name)
        tables: dict[str, Any] = {
            "users_table": users_table.table_name,
            "items_table": items_table.table_name,
            "sessions_table": sessions_table.table_name,
        }
        pages = {
            "counters_table": counters_table.table_name,
            "experiments_table": experiments_table.table_name,
            "events_stream": events_stream.stream_name,
            "model_parameter": self.model_parameter,
            "artifacts_bucket": artifacts_bucket.bucket_name,
            "model_in_memory": self.size.snap_start,
        }
        self.functions: dict[str, lambda_.Function] = {
            name: merchandiser_function(self, name, ServingSettings, layers, self.size, **tables, **pages)
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
        parameter_arn = (
            f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{self.model_parameter}"
        )
        for name in c.SERVING_FUNCTIONS:
            # the live model: its version from the parameter, its files from models/<version>/
            self.functions[name].add_to_role_policy(
                iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[parameter_arn])
            )
            allow_objects(
                self.functions[name],
                artifacts_bucket,
                [MODELS_PREFIX],
                ["s3:GetObject"],
                "serving fetches the live model's files, models/<version>/<file>, the version known at init.",
            )
            allow_tables(self.functions[name], [users_table, items_table, sessions_table], TABLE_READ)
            allow_tables(self.functions[name], [counters_table], COUNTER_READ_ACTIONS)
            allow_tables(self.functions[name], [experiments_table], EXPERIMENTS_SERVING_ACTIONS)
            # every served page is one impression record on the stream (merchandiser.serving.impressions)
            self.functions[name].add_to_role_policy(
                iam.PolicyStatement(actions=["kinesis:PutRecords"], resources=[events_stream.stream_arn])
            )
        # API Gateway invokes the serving functions through their `live` alias; a canary moves it to a new
        # version (merchandiser.publishing.canary for a model, CloudFormation's CodeDeploy update for code).
        # Without SnapStart where the on-demand init would miss the cold-start budget (past SnapStart's /tmp,
        # or SnapStart turned off), provisioned concurrency keeps containers loaded (ServingSize).
        provisioned = self.size.provisioned_concurrency
        self.aliases: dict[str, lambda_.Alias] = {
            name: lambda_.Alias(
                self,
                f"{self.functions[name].node.id}LiveAlias",
                alias_name=SERVING_ALIAS,
                version=self.functions[name].current_version,
                provisioned_concurrent_executions=provisioned,
            )
            for name in c.SERVING_FUNCTIONS
        }
        self.canary = ModelCanary(self, "ModelCanary", self.aliases)
        self.swap_targets = SwapTargets(
            model_parameter=self.model_parameter,
            functions=tuple(self.functions[name] for name in c.SERVING_FUNCTIONS),
            aliases=tuple(self.aliases[name] for name in c.SERVING_FUNCTIONS),
            application_name=self.canary.application.application_name,
            application_arn=self.canary.application.application_arn,
            deployment_groups=tuple(self.canary.groups[n].deployment_group_name for n in c.SERVING_FUNCTIONS),
            deployment_group_arns=tuple(
                self.canary.groups[n].deployment_group_arn for n in c.SERVING_FUNCTIONS
            ),
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
            "DELETE /users/{id} writes one tombstone per erased shopper, named by the sha256 of its id.",
        )
        experiments = merchandiser_function(
            self,
            "experiments",
            ExperimentsSettings,
            layers,
            experiments_table=experiments_table.table_name,
            artifacts_bucket=artifacts_bucket.bucket_name,
        )
        allow_tables(experiments, [experiments_table], EXPERIMENTS_ADMIN_ACTIONS)
        allow_objects(
            experiments,
            artifacts_bucket,
            [REPORTS_PREFIX, PRODUCTION_POINTER],
            ["s3:GetObject"],
            "GET /experiments/{name}/report reads the daily job's latest report of that experiment.",
        )
        self.functions.update(events_api=events_api, catalog=catalog, experiments=experiments)

        self.api = MerchandiserApi(self, "Api")
        for http_method, path, name in c.API_ROUTES:
            target = self.aliases.get(name, self.functions[name])
            self.api.add_route(http_method, path, target)

        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url)
        CfnOutput(self, "RestApiId", value=self.api.rest_api.rest_api_id)
        # The id only: read the value with `aws apigateway get-api-key --api-key ID --include-value`.
        CfnOutput(self, "StorefrontApiKeyId", value=self.api.storefront_key.key_id)
        CfnOutput(self, "LiveModelParameter", value=self.model_parameter)
        for function in self.functions.values():
            CfnOutput(self, f"{function.node.id}FunctionName", value=function.function_name)
