"""The canary that moves every serving alias (a new model from publish, new code from `cdk deploy`): one
CodeDeploy Lambda deployment group per serving function, 10% of the traffic for 5 minutes, rolled back
automatically when any serving alias errs or slows down meanwhile.

Every group watches every serving alias's alarms: a bad model fails its three canaries together.
The alarms live here, not in the monitoring stack, because the groups need them and the monitoring
stack already depends on this one (a reference back would be a cycle). The monitoring dashboard does not
show them yet: a cross-stack reference to an alarm's ARN breaks the twin's deploy (moto's CloudFormation
has no CloudWatch alarms), so that widget waits for a twin-side stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import constants as c

CANARY_CONFIG = codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES


class ModelCanary(Construct):
    def __init__(self, scope: Construct, construct_id: str, aliases: Mapping[str, lambda_.Alias]) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, alias in aliases.items():
            construct = "".join(part.title() for part in name.split("_"))
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{construct}Errors",
                    alarm_description=f"{name} ({alias.alias_name}) errs: a canary under way rolls back",
                    metric=alias.metric_errors(period=Duration.minutes(1), statistic="Sum"),
                    threshold=c.CANARY_ERRORS_PER_MINUTE,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{construct}Latency",
                    alarm_description=f"{name} (alias {alias.alias_name}) p99 above {c.CANARY_P99_MS} ms: a "
                    "canary in progress rolls back",
                    metric=alias.metric_duration(period=Duration.minutes(1), statistic="p99"),
                    threshold=c.CANARY_P99_MS,
                    evaluation_periods=c.CANARY_LATENCY_PERIODS,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        self.application = codedeploy.LambdaApplication(self, "Application")
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        for name, alias in aliases.items():
            construct = "".join(part.title() for part in name.split("_"))
            group = codedeploy.LambdaDeploymentGroup(
                self,
                f"{construct}Group",
                application=self.application,
                alias=alias,
                deployment_config=CANARY_CONFIG,
                alarms=self.alarms,
                auto_rollback=codedeploy.AutoRollbackConfig(
                    deployment_in_alarm=True, failed_deployment=True, stopped_deployment=True
                ),
            )
            Validations.of(group.role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSCodeDeployRoleForLambdaLimited]",
                    reason="CodeDeploy's service role for Lambda deployments: AWS documents this managed "
                    "policy for it; it may only read the alarms, invoke hooks and update aliases.",
                )
            )
            self.groups[name] = group
