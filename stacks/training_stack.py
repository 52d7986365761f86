"""SageMaker execution role, the training source asset, start_training and publish in the schedule's state
machine (with the Spark job run on EMR Serverless: stacks/spark_training.py), and the daily experiment report
job (stacks/report_job.py)."""

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
    ITEMS_TABLE_SNAPSHOT_KEY,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    PRODUCTION_POINTER,
    TOMBSTONES_PREFIX,
    USERS_PREFIX,
)
from stacks import constants as c
from stacks.functions import SERVING_ALIAS, SharedLayers, SwapTargets, merchandiser_function
from stacks.permissions import TABLE_WRITE, allow_list, allow_objects, allow_tables, arn_in_findings
from stacks.report_job import ExperimentReportJob
from stacks.spark_training import SparkTraining
from stacks.training_source import allow_training_io, build_source_tarball, ecr_repository_arn

SAGEMAKER_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class TrainingRole(Construct):
    """What a training job may do: read its inputs, write models, log, pull its image."""

    def __init__(
        self, scope: Construct, construct_id: str, bucket: s3.IBucket, source: s3_assets.Asset, image_uri: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        allow_training_io(
            self.role, bucket, "SageMaker writes each job's model.tar.gz under a per-job key it names itself."
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


def swap_settings(targets: SwapTargets) -> dict[str, Any]:
    """PublishSettings fields that turn the live-model parameter and the canary on."""
    return {
        "model_parameter": targets.model_parameter,
        "serving_functions": Fn.join(",", [function.function_name for function in targets.functions]),
        "deployment_application": targets.application_name,
        "deployment_groups": Fn.join(",", list(targets.deployment_groups)),
        "serving_alias": SERVING_ALIAS,
    }


def allow_model_swap(publish: lambda_.Function, targets: SwapTargets) -> None:
    """Exactly what ``merchandiser.publishing`` calls to make a model live, on exactly those resources."""
    parameter = f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{targets.model_parameter}"
    publish.add_to_role_policy(
        iam.PolicyStatement(actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[parameter])
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
    # Each canary start prunes the function's old versions (merchandiser.publishing.canary.ModelCanary.prune):
    # listing on the functions, deleting only their qualified ARNs (versions), never a whole function.
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:ListVersionsByFunction", "lambda:ListAliases"],
            resources=[function.function_arn for function in targets.functions],
        )
    )
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:DeleteFunction"],
            resources=[f"{function.function_arn}:*" for function in targets.functions],
        )
    )
    Validations.of(publish.role).acknowledge(  # type: ignore[arg-type]
        *(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{arn_in_findings(function, function.function_arn)}:*]",
                reason="lambda:DeleteFunction on the versions of a serving function (its qualified ARNs), "
                "which the canary prunes: it cannot delete the function itself (its unqualified ARN).",
            )
            for function in targets.functions
        )
    )
    # CodeDeploy's create-deployment: the group, the application's revisions, the predefined config.
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["codedeploy:CreateDeployment"], resources=list(targets.deployment_group_arns)
        )
    )
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"],
            resources=[targets.application_arn],
        )
    )
    publish.add_to_role_policy(
        iam.PolicyStatement(
            actions=["codedeploy:GetDeploymentConfig"],
            resources=[
                f"arn:{Aws.PARTITION}:codedeploy:{Aws.REGION}:{Aws.ACCOUNT_ID}:deploymentconfig:"
                "CodeDeployDefault.LambdaCanary10Percent5Minutes"
            ],
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
        emr_python_env_uri: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        tarball = build_source_tarball(Path(tempfile.gettempdir()) / "merchandiser-training-source")
        self.training_source = s3_assets.Asset(self, "TrainingSource", path=str(tarball))
        training = TrainingRole(self, "Training", artifacts_bucket, self.training_source, training_image_uri)
        self.training_role = training.role

        layers = SharedLayers(self, "Layers", layers_dir)
        spark = SparkTraining(self, "Spark", bucket=artifacts_bucket, python_env_uri=emr_python_env_uri)
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
            **spark.environment(),
        )
        allow_list(start_training, artifacts_bucket, [EVENTS_PREFIX])  # the archive's size picks the engine
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
            # A canary CodeDeploy stopped (alarm, failure, operator): publish puts the live-model parameter
            # and the production pointer back when it was the last promotion's (publishing.canary_failed).
            events.Rule(
                self,
                "CanaryStopped",
                event_pattern=events.EventPattern(
                    source=["aws.codedeploy"],
                    detail_type=["CodeDeploy Deployment State-change Notification"],
                    detail={"state": ["FAILURE", "STOP"], "application": [swap_targets.application_name]},
                ),
                targets=[targets.LambdaFunction(publish, retry_attempts=2)],
            )
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
        # the profiles that changed: a Scan of the stored digests, then their writes
        allow_tables(publish, [users_table], (*TABLE_WRITE, "dynamodb:Scan"))
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
        # the schedule starts a state machine: start_training; past the size, the Spark job run and publish
        self.schedule = spark.schedule(start_training, publish, schedule_expression)
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
