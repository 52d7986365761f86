"""SageMaker execution role, the training source asset, start_training (scheduled), publish, and the daily
experiment report job (stacks/report_job.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnOutput, Fn, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from merchandiser.publishing import JOB_PREFIX
from merchandiser.settings import ErasureSettings, PublishSettings, TrainingTriggerSettings
from merchandiser.store import (
    ERASURE_STATE,
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    ITEMS_PREFIX,
    ITEMS_TABLE_SNAPSHOT_KEY,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    PRODUCTION_POINTER,
    TOMBSTONES_PREFIX,
    USERS_PREFIX,
)
from stacks import constants as c
from stacks.functions import SERVING_ALIAS, SharedLayers, SwapTargets, merchandiser_function
from stacks.permissions import TABLE_WRITE, allow_list, allow_objects, allow_tables
from stacks.report_job import ExperimentReportJob
from stacks.training_source import build_source_tarball, ecr_repository_arn

SAGEMAKER_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class TrainingRole(Construct):
    """What a training job may do: read its inputs, write models, log, pull its image."""

    def __init__(
        self, scope: Construct, construct_id: str, bucket: s3.IBucket, source: s3_assets.Asset, image_uri: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        # models/: the production model, scored on the job's own test window for the quality gate
        inputs = [EVENTS_PREFIX, ITEMS_PREFIX, USERS_PREFIX, MODELS_PREFIX]
        allow_objects(self.role, bucket, inputs, ["s3:GetObject"], "a training channel is a whole prefix.")
        allow_list(self.role, bucket, inputs)
        allow_objects(
            self.role,
            bucket,
            [OUTPUT_PREFIX],
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            "SageMaker writes each job's model.tar.gz under a per-job key it names itself.",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[source.bucket.arn_for_objects(source.s3_object_key)]
            )
        )
        log_group_arn = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{SAGEMAKER_LOG_GROUP}"
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[f"{log_group_arn}:*"],
            )
        )  # fmt: skip
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                resources=[ecr_repository_arn(image_uri, Aws.PARTITION)],
            )
        )
        # Neither call supports resource-level permissions (documented in tests/infra).
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": SAGEMAKER_LOG_GROUP}},
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                "permissions; PutMetricData is limited to the /aws/sagemaker/TrainingJobs namespace.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                f"log-group:{SAGEMAKER_LOG_GROUP}:*]",
                reason="SageMaker writes one log stream per training job in its fixed log group.",
            ),
        )


def swap_settings(targets: SwapTargets) -> dict[str, str]:
    """PublishSettings fields that turn the blue/green swap on."""
    return {
        "model_layer_name": targets.model_layer_name,
        "serving_functions": Fn.join(",", [function.function_name for function in targets.functions]),
        "serving_alias": SERVING_ALIAS,
    }


def allow_model_swap(publish: lambda_.Function, targets: SwapTargets) -> None:
    """Exactly what ``merchandiser.publishing.swap`` calls, on exactly the serving functions and layers."""
    layer = f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{Aws.ACCOUNT_ID}:layer:{targets.model_layer_name}"
    publish.add_to_role_policy(iam.PolicyStatement(actions=["lambda:PublishLayerVersion"], resources=[layer]))
    # Updating a function's layers needs GetLayerVersion on every layer it will use; the new model
    # layer version does not exist yet, hence ":*" on that one layer.
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:GetLayerVersion"],
            resources=[f"{layer}:*", *(kept.layer_version_arn for kept in targets.kept_layers)],
        )
    )
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=[
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionConfiguration",
                "lambda:PublishVersion",
            ],
            resources=[function.function_arn for function in targets.functions],
        )
    )
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:GetAlias", "lambda:UpdateAlias"],
            resources=[alias.function_arn for alias in targets.aliases],
        )
    )
    Validations.of(publish.role).acknowledge(  # type: ignore[arg-type]
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:"
            f"layer:{targets.model_layer_name}:*]",
            reason="publish creates a new version of the model layer on each promotion and attaches it: "
            "its version number is only known then. Limited to that one layer.",
        )
    )


class TrainingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifacts_bucket: s3.IBucket,
        users_table: dynamodb.ITable,
        items_table: dynamodb.ITable,
        experiments_table: dynamodb.ITable,
        layers_dir: Path,
        schedule_expression: str,
        training_image_uri: str,
        swap_targets: SwapTargets | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        tarball = build_source_tarball(Path(tempfile.gettempdir()) / "merchandiser-training-source")
        self.training_source = s3_assets.Asset(self, "TrainingSource", path=str(tarball))
        training = TrainingRole(self, "Training", artifacts_bucket, self.training_source, training_image_uri)
        self.training_role = training.role

        layers = SharedLayers(self, "Layers", layers_dir, with_model=False)
        start_training = merchandiser_function(
            self,
            "start_training",
            TrainingTriggerSettings,
            layers,
            artifacts_bucket=artifacts_bucket.bucket_name,
            items_table=items_table.table_name,
            training_role_arn=self.training_role.role_arn,
            training_source_uri=self.training_source.s3_object_url,
            training_image_uri=training_image_uri,
            training_instance_type=c.TRAINING_INSTANCE_TYPE,
        )
        start_training.add_to_role_policy(
            iam.PolicyStatement(
                # AddTags: the job request carries tags (merchandiser.publishing.jobs).
                actions=["sagemaker:CreateTrainingJob", "sagemaker:AddTags"],
                resources=[
                    f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:training-job/{JOB_PREFIX}*"
                ],
            )
        )
        self.training_role.grant_pass_role(start_training.grant_principal)
        # the catalogue export (a Scan of the items table into the items channel) and the production pointer
        allow_tables(start_training, [items_table], ("dynamodb:Scan",))
        start_training.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[artifacts_bucket.arn_for_objects(ITEMS_TABLE_SNAPSHOT_KEY)],
            )
        )
        start_training.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[artifacts_bucket.arn_for_objects(PRODUCTION_POINTER)]
            )
        )
        Validations.of(start_training.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:training-job/{JOB_PREFIX}*]",
                reason="Each run creates a new, timestamped job name; the grant is limited to the "
                f"'{JOB_PREFIX}' prefix.",
            )
        )
        events.Rule(
            self,
            "TrainingSchedule",
            schedule=events.Schedule.expression(schedule_expression),
            targets=[targets.LambdaFunction(start_training, retry_attempts=2)],
        )

        publish = merchandiser_function(
            self,
            "publish",
            PublishSettings,
            layers,
            artifacts_bucket=artifacts_bucket.bucket_name,
            users_table=users_table.table_name,
            items_table=items_table.table_name,
            **(swap_settings(swap_targets) if swap_targets else {}),
        )
        if swap_targets:
            allow_model_swap(publish, swap_targets)
        allow_objects(
            publish,
            artifacts_bucket,
            [OUTPUT_PREFIX],
            ["s3:GetObject"],
            "publish reads the model.tar.gz of whichever job just completed.",
        )
        allow_objects(
            publish,
            artifacts_bucket,
            [MODELS_PREFIX],
            ["s3:GetObject", "s3:PutObject"],
            "publish writes models/<version>/ for each new version and the models/production.json pointer.",
        )
        # the tombstones written after a model's training: those shoppers' profiles are not loaded
        allow_list(publish, artifacts_bucket, [OUTPUT_PREFIX, MODELS_PREFIX, TOMBSTONES_PREFIX])
        allow_tables(publish, [users_table], TABLE_WRITE)
        # the overlay entries a promoted model holds leave it (conditional UpdateItem after a GetItem)
        allow_tables(publish, [items_table], ("dynamodb:GetItem", "dynamodb:UpdateItem"))
        events.Rule(
            self,
            "TrainingCompleted",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Training Job State Change"],
                detail={
                    "TrainingJobStatus": ["Completed"],
                    "TrainingJobName": [{"prefix": JOB_PREFIX}],
                },
            ),
            targets=[targets.LambdaFunction(publish, retry_attempts=2)],
        )
        erasure = self._archive_eraser(artifacts_bucket, layers)
        reports = ExperimentReportJob(
            self, "ExperimentReports", artifacts_bucket=artifacts_bucket, experiments_table=experiments_table,
            layers=layers,
        )  # fmt: skip
        self.functions: dict[str, lambda_.Function] = {
            "start_training": start_training,
            "publish": publish,
            "erasure": erasure,
            "experiment_report": reports.function,
        }

        CfnOutput(self, "TrainingRoleArn", value=self.training_role.role_arn)
        CfnOutput(self, "TrainingSourceUri", value=self.training_source.s3_object_url)
        CfnOutput(self, "TrainingImageUri", value=training_image_uri)
        for function in self.functions.values():
            CfnOutput(self, f"{function.node.id}FunctionName", value=function.function_name)

    def _archive_eraser(self, artifacts_bucket: s3.IBucket, layers: SharedLayers) -> lambda_.Function:
        """The daily job that rewrites the bucket without erased shoppers (``merchandiser.store.erasure``)."""
        erasure = merchandiser_function(
            self, "erasure", ErasureSettings, layers, artifacts_bucket=artifacts_bucket.bucket_name
        )
        rewritten = [EVENTS_PREFIX, IMPRESSIONS_PREFIX, USERS_PREFIX, MODELS_PREFIX, OUTPUT_PREFIX]
        allow_objects(
            erasure,
            artifacts_bucket,
            rewritten,
            ["s3:GetObject", "s3:PutObject"],
            "the eraser rewrites any object of the archive, the users channel or a model that holds an "
            "erased shopper; which ones is only known by reading them.",
        )
        allow_objects(
            erasure,
            artifacts_bucket,
            [ERASURE_STATE],
            ["s3:GetObject", "s3:PutObject"],
            "one state object: the erasures applied and the last run.",
        )
        allow_list(erasure, artifacts_bucket, rewritten)
        events.Rule(
            self,
            "ErasureSchedule",
            schedule=events.Schedule.expression(c.ERASURE_SCHEDULE),
            targets=[targets.LambdaFunction(erasure, retry_attempts=2)],
        )
        return erasure
