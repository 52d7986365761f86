"""Dashboard and alarms: API latency and errors, per-function errors/duration, stream lag, DLQ, and the
online KPIs: pages served by surface and variant (serving's metrics) and the daily job's CTR per surface
against its 7-day baseline (an alarm per surface when it falls below 70% of it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from merchandiser.experiments import ALL_VARIANTS, SURFACES
from stacks import constants as c
from stacks.functions import service_name
from stacks.serving_stack import MerchandiserApi

PERIOD = Duration.minutes(5)
DAY = Duration.days(1)
# serving's per-page metrics (merchandiser.serving.metrics.emit_page): every surface and variant found
PAGES_SEARCH = "SEARCH('{{{namespace},service,surface,variant}} MetricName=\"Impressions\"', 'Sum', 300)"


def kpi(name: str, surface: str) -> cloudwatch.Metric:
    """A daily KPI of the experiment report job, for one surface, every variant together."""
    return cloudwatch.Metric(
        namespace=c.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={
            "service": service_name("experiment_report"),
            "surface": surface,
            "variant": ALL_VARIANTS,
        },
        statistic="Average",
        period=DAY,
    )


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: MerchandiserApi,
        functions: Mapping[str, lambda_.IFunction],
        event_processor: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # CloudWatch alarms cannot publish to a topic under the AWS-managed aws/sns key: a customer-managed
        # key whose policy lets CloudWatch use it.
        topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the Merchandiser alarm topic",
            enable_key_rotation=True,
        )
        topic_key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Merchandiser alarms",
            enforce_ssl=True,
            master_key=topic_key,
        )
        rest_api = api.rest_api
        latency = [
            rest_api.metric_latency(statistic=stat, period=PERIOD, label=stat) for stat in ("p50", "p99")
        ]
        server_errors = rest_api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx")
        client_errors = rest_api.metric_client_error(period=PERIOD, statistic="Sum", label="4xx")
        # No label on metrics used by alarms: a label turns the alarm into a metric-math alarm.
        iterator_age = event_processor.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(1))
        dlq_visible = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(1), statistic="Maximum"
        )

        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=c.APP_NAME)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API latency (ms)", left=latency, width=12),
            cloudwatch.GraphWidget(title="API errors", left=[server_errors, client_errors], width=12),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[f.metric_errors(period=PERIOD, label=name) for name, f in functions.items()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms)",
                left=[
                    f.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, f in functions.items()
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Kinesis iterator age (event processor)", left=[iterator_age], width=12
            ),
            cloudwatch.GraphWidget(title="Events DLQ depth", left=[dlq_visible], width=12),
        )
        # ids unique per surface: the six expressions share one graph
        ctr_ratio = {
            surface: cloudwatch.MathExpression(
                expression=f"ctr{n} / baseline{n}",
                using_metrics={f"ctr{n}": kpi("Ctr", surface), f"baseline{n}": kpi("CtrBaseline", surface)},
                period=DAY,
                label=surface,
            )
            for n, surface in enumerate(SURFACES)
        }
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Pages served by surface and variant",
                left=[
                    cloudwatch.MathExpression(
                        expression=PAGES_SEARCH.format(namespace=c.METRICS_NAMESPACE),
                        using_metrics={},
                        label="pages",
                        period=PERIOD,
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="CTR by surface (daily job, 24 h attribution)",
                left=[kpi("Ctr", surface).with_(label=surface) for surface in SURFACES],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="CTR / its 7-day baseline (alarm below 0.7)",
                left=list(ctr_ratio.values()),
                left_annotations=[cloudwatch.HorizontalAnnotation(value=c.ALARM_CTR_RATIO, label="alarm")],
                width=8,
            ),
        )

        alarms = [
            cloudwatch.Alarm(
                self,
                "Api5xxRate",
                alarm_description="More than 1% of API requests fail with 5xx",
                metric=rest_api.metric_server_error(period=PERIOD, statistic="Average"),
                threshold=c.ALARM_5XX_RATE,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "IteratorAge",
                alarm_description="The event processor lags the stream by more than a minute",
                metric=iterator_age,
                threshold=c.ALARM_ITERATOR_AGE_MS,
                evaluation_periods=5,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "DeadLetters",
                alarm_description="Events failed processing and landed in the dead-letter queue",
                metric=dlq_visible,
                threshold=c.ALARM_DLQ_VISIBLE,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        # Functions invoked asynchronously (by EventBridge) park failed events in their own queue.
        for name, function in functions.items():
            queue = function.dead_letter_queue if isinstance(function, lambda_.Function) else None
            if queue is not None:
                alarms.append(
                    cloudwatch.Alarm(
                        self,
                        f"{function.node.id}DeadLetters",
                        alarm_description=f"{name} gave up on an event: it is in its dead-letter queue",
                        metric=queue.metric_approximate_number_of_messages_visible(
                            period=Duration.minutes(1), statistic="Maximum"
                        ),
                        threshold=c.ALARM_DLQ_VISIBLE,
                        evaluation_periods=1,
                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
        alarms += [
            cloudwatch.Alarm(
                self,
                f"CtrDrop{''.join(part.title() for part in surface.split('-'))}",
                alarm_description=(
                    f"CTR on {surface} pages below {c.ALARM_CTR_RATIO:.0%} of its 7-day baseline "
                    "(the daily experiment report job's KPIs)"
                ),
                metric=ratio,
                threshold=c.ALARM_CTR_RATIO,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for surface, ratio in ctr_ratio.items()
        ]
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarm_topic))

        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(self, "DashboardName", value=c.APP_NAME)
