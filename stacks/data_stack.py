"""Tables (users, items, sessions, trending counters, experiments) and the artifacts bucket."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from merchandiser.store import COUNTERS_PARTITION_KEY, COUNTERS_SORT_KEY
from stacks import checkov_skips as checkov
from stacks import constants as c


def _table(
    scope: Construct,
    construct_id: str,
    partition_key: str,
    ttl: str | None = None,
    sort_key: str | None = None,
) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=ttl,
        removal_policy=RemovalPolicy.RETAIN,
    )
    checkov.skip_checks(
        table,
        {
            "CKV_AWS_119": "Encrypted at rest with the AWS-managed DynamoDB key (aws/dynamodb); a "
            "customer-managed key (billed per key and per request) is a retailer's option, not a default."
        },
    )
    return table


def _private_bucket(scope: Construct, construct_id: str, **kwargs: Any) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Grant log delivery through the target bucket's policy, not the legacy LogDeliveryWrite ACL
        # (ACLs stay disabled with BucketOwnerEnforced).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.users_table = _table(self, "UsersTable", "user_id")
        self.items_table = _table(self, "ItemsTable", "item_id")
        self.sessions_table = _table(self, "SessionsTable", "user_id", ttl=c.SESSION_TTL_ATTRIBUTE)
        # Trending counters (merchandiser.store.counters): one item per (hour, item), one summary per hour.
        self.counters_table = _table(
            self,
            "CountersTable",
            COUNTERS_PARTITION_KEY,
            ttl=c.SESSION_TTL_ATTRIBUTE,
            sort_key=COUNTERS_SORT_KEY,
        )
        # One item per experiment, key "name" (merchandiser.experiments.create_table has the same shape).
        self.experiments_table = _table(self, "ExperimentsTable", "name")

        self.access_logs_bucket = _private_bucket(
            self,
            "AccessLogsBucket",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(90), noncurrent_version_expiration=Duration.days(30)
                )
            ],
        )
        checkov.skip_checks(
            self.access_logs_bucket,
            {
                "CKV_AWS_18": "This bucket is the server-access-log target of the artifacts bucket; logging "
                "it too would need yet another bucket (or log into itself, which loops)."
            },
        )
        Validations.of(self.access_logs_bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket is the server-access-log target of the artifacts bucket; "
                "logging it too would need yet another bucket (or log into itself, which loops).",
            )
        )
        self.artifacts_bucket = _private_bucket(
            self,
            "ArtifactsBucket",
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
        )

        CfnOutput(self, "UsersTableName", value=self.users_table.table_name)
        CfnOutput(self, "ItemsTableName", value=self.items_table.table_name)
        CfnOutput(self, "SessionsTableName", value=self.sessions_table.table_name)
        CfnOutput(self, "CountersTableName", value=self.counters_table.table_name)
        CfnOutput(self, "ExperimentsTableName", value=self.experiments_table.table_name)
        CfnOutput(self, "ArtifactsBucketName", value=self.artifacts_bucket.bucket_name)
