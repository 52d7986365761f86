"""Training past one machine: an EMR Serverless application for the Spark job run, its role and code, and
the schedule's state machine that chooses the engine by the archive's size (merchandiser.publishing.engine).

    schedule -> Plan (start_training: exports the catalogue, measures the archive, starts SageMaker or
                returns the Spark job run) -> Spark? -> RunSpark (emr-serverless:startJobRun.sync)
                                                      -> Publish (publish with the job's model.tar.gz)
                                         -> else: done (SageMaker's completion event invokes publish)

The job run's Python dependencies (numpy, lightgbm, hnswlib, implicit, pandas, pydantic...) are not on
EMR's image: they come as a venv-pack archive built for Amazon Linux (README, "Training on Spark") whose S3
URI is the ``merchandiser:emrPythonEnv`` context value; without it the stack synthesizes with a warning
and the application stays idle until a shop reaches the size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Annotations, Aws, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_emrserverless as emrserverless
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks import checkov_skips as checkov
from stacks import constants as c
from stacks.training_source import REPO_ROOT, allow_training_io, build_source_zip

ENTRY_POINT = REPO_ROOT / "training" / "emr_job.py"


class SparkTraining(Construct):
    """The EMR Serverless application and what its job runs need; ``environment()`` gives start_training
    the settings that name them, ``schedule()`` builds the state machine once both functions exist."""

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, python_env_uri: str = ""
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = bucket
        self.python_env_uri = python_env_uri
        source = build_source_zip(Path(tempfile.gettempdir()) / "merchandiser-spark-source")
        self.source = s3_assets.Asset(self, "Source", path=str(source))
        self.entry_point = s3_assets.Asset(self, "EntryPoint", path=str(ENTRY_POINT))
        self.application = emrserverless.CfnApplication(
            self,
            "Application",
            name="merchandiser-training",
            release_label=c.EMR_RELEASE_LABEL,
            type="SPARK",
            architecture="X86_64",
            # started by the first job run, stopped when idle: nothing is billed between trainings
            auto_start_configuration=emrserverless.CfnApplication.AutoStartConfigurationProperty(
                enabled=True
            ),
            auto_stop_configuration=emrserverless.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=c.EMR_IDLE_MINUTES
            ),
            maximum_capacity=emrserverless.CfnApplication.MaximumAllowedResourcesProperty(
                cpu=c.EMR_MAX_CPU, memory=c.EMR_MAX_MEMORY, disk=c.EMR_MAX_DISK
            ),
        )
        self.role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("emr-serverless.amazonaws.com"))
        allow_training_io(
            self.role, bucket, "the job run writes its model.tar.gz under a per-job key (SageMaker's layout)."
        )
        for asset in (self.source, self.entry_point):  # these two objects only, not the assets bucket
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[asset.bucket.arn_for_objects(asset.s3_object_key)]
                )
            )
        if not python_env_uri:
            Annotations.of(self).add_warning_v2(
                "merchandiser:emrPythonEnv",
                "no Python environment for the Spark job run (-c merchandiser:emrPythonEnv=s3://...): a shop"
                " past the single-machine size would fail to train on EMR Serverless (README).",
            )

    def environment(self) -> dict[str, Any]:
        """start_training's settings for the Spark job run (``TrainingTriggerSettings``)."""
        return {
            "emr_application_id": self.application.attr_application_id,
            "emr_role_arn": self.role.role_arn,
            "emr_entry_point_uri": self.entry_point.s3_object_url,
            "emr_source_uri": self.source.s3_object_url,
            "emr_python_env_uri": self.python_env_uri,
            "spark_min_events": c.SPARK_MIN_EVENTS,
        }

    def schedule(
        self, start_training: lambda_.IFunction, publish: lambda_.IFunction, schedule_expression: str
    ) -> sfn.StateMachine:
        """The state machine the schedule starts (see the module's docstring)."""
        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            lambda_function=start_training,
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        # Step Functions' optimized EMR Serverless integration: .sync waits for the job run to end
        run_spark = sfn.CustomState(
            self,
            "RunSpark",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Aws.PARTITION}:states:::emr-serverless:startJobRun.sync",
                "Parameters": {
                    "ApplicationId.$": "$.job_run.ApplicationId",
                    "ExecutionRoleArn.$": "$.job_run.ExecutionRoleArn",
                    "Name.$": "$.job_run.Name",
                    "JobDriver.$": "$.job_run.JobDriver",
                    "ExecutionTimeoutMinutes.$": "$.job_run.ExecutionTimeoutMinutes",
                    "Tags.$": "$.job_run.Tags",
                },
                "ResultPath": "$.emr",
            },
        )
        publish_model = tasks.LambdaInvoke(
            self,
            "Publish",
            lambda_function=publish,
            payload=sfn.TaskInput.from_object({"model_artifact": sfn.JsonPath.string_at("$.model_artifact")}),
            payload_response_only=True,
        )
        choose = (
            sfn.Choice(self, "Spark?")
            .when(sfn.Condition.string_equals("$.engine", "spark"), run_spark.next(publish_model))
            .otherwise(sfn.Succeed(self, "SageMakerStarted", comment="publish runs on the job's completion"))
        )
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        checkov.skip_checks(log_group, {"CKV_AWS_158": checkov.LOGS_SERVICE_ENCRYPTED})
        machine = sfn.StateMachine(
            self,
            "Schedule",
            definition_body=sfn.DefinitionBody.from_chainable(plan.next(choose)),
            timeout=Duration.hours(c.EMR_MAX_RUNTIME_HOURS),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
        )
        self._allow_job_runs(machine, (start_training, publish))
        events.Rule(
            self,
            "TrainingSchedule",
            schedule=events.Schedule.expression(schedule_expression),
            targets=[targets.SfnStateMachine(machine, retry_attempts=2)],
        )
        return machine

    def _allow_job_runs(self, machine: sfn.StateMachine, functions: tuple[lambda_.IFunction, ...]) -> None:
        """What the .sync integration calls: the job run on this application, and the managed rule through
        which Step Functions learns that it ended."""
        application_arn = self.application.attr_arn
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[f"emr-serverless:{action}"
                         for action in ("StartJobRun", "GetJobRun", "CancelJobRun", "TagResource")],
                resources=[application_arn, f"{application_arn}/jobruns/*"],
            )
        )  # fmt: skip
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/"
                    "StepFunctionsGetEventsForEMRServerlessJobRule"
                ],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(actions=["iam:PassRole"], resources=[self.role.role_arn])
        )
        stack = Stack.of(self)
        function_arns = [f"<{stack.get_logical_id(fn.node.default_child)}.Arn>:*" for fn in functions]  # type: ignore[arg-type]
        Validations.of(machine.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(self.application)}.Arn>/jobruns/*]",
                reason="each training creates a job run with an id EMR Serverless names; the grant is "
                "limited to this application's job runs.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray's PutTraceSegments/PutTelemetryRecords and CloudWatch Logs' log-delivery "
                "actions (the state machine's tracing and logs) support no resource-level permissions.",
            ),
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{arn}]",
                    reason="Step Functions' Lambda integration invokes the function by any version or alias "
                    "(CDK's grant); the functions are start_training and publish only.",
                )
                for arn in function_arns
            ),
        )
