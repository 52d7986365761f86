"""Least-privilege grants with exact actions and exact resources (no ``grant_*`` wildcards).

CDK's ``grant_read_write_data`` adds ``<table>/index/*`` and ``s3:GetObject*``-style actions;
these tables have no indexes and the functions need a known set of calls, so each grant lists them.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

TABLE_READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan")
TABLE_WRITE = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
TABLE_READ_WRITE = TABLE_READ + TABLE_WRITE
# The event processor: one BatchGetItem per batch, GetItem after a conflict, a conditional PutItem per
# shopper, UpdateItem ADDs on the stream figures; the exploration posteriors' TransactWriteItems
# (a conditional Put of the page and UpdateItem ADDs, authorised as PutItem and UpdateItem each).
SESSION_PROCESSOR_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)


# The event processor on the counters table: TransactWriteItems of ADDs per (hour, item) and on the dirty set,
# each Update action authorised as UpdateItem; nothing else.
COUNTER_PROCESSOR_ACTIONS = ("dynamodb:UpdateItem",)
# The trending compactor: GetItem of the dirty set, UpdateItem to clear (and re-mark) hours in it, a Query
# per write partition of an hour, a PutItem per hour's summary.
COMPACTOR_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:PutItem")
# Serving reads the hours' summaries with BatchGetItem, nothing else.
COUNTER_READ_ACTIONS = ("dynamodb:BatchGetItem",)


def allow_tables(grantee: iam.IGrantable, tables: Sequence[dynamodb.ITable], actions: Sequence[str]) -> None:
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=[table.table_arn for table in tables])
    )


def arn_in_findings(resource: IConstruct, arn: str) -> str:
    """How cdk-nag spells ``arn``, an attribute of ``resource`` from another stack: the name of its
    automatic export.

    ``export_value`` without a name returns the same import the cross-stack reference will use.
    """
    producer = Stack.of(resource)
    imported = producer.resolve(producer.export_value(arn))
    return str(imported["Fn::ImportValue"])


def bucket_arn_in_findings(bucket: s3.IBucket) -> str:
    """``arn_in_findings`` of a bucket's ARN."""
    return arn_in_findings(bucket, bucket.bucket_arn)


def allow_objects(
    grantee: iam.IGrantable,
    bucket: s3.IBucket,
    prefixes: Sequence[str],
    actions: Sequence[str],
    reason: str,
) -> None:
    """Object-level actions under ``prefixes`` of a bucket from another stack.

    An object ARN under a prefix needs a trailing ``*``, which cdk-nag reports (AwsSolutions-IAM5) per
    prefix; each is acknowledged on the grantee with ``reason``.
    """
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions), resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
        )
    )
    arn = bucket_arn_in_findings(bucket)
    acknowledgments = [
        Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{arn}/{prefix}*]", reason=f"{prefix}*: {reason}")
        for prefix in prefixes
    ]
    Validations.of(_construct_of(grantee)).acknowledge(*acknowledgments)


def _construct_of(grantee: iam.IGrantable) -> Construct:
    """The construct holding the grantee's policy: a function's role, or the role itself."""
    role = getattr(grantee, "role", None) or grantee
    if not isinstance(role, Construct):
        raise TypeError(f"cannot acknowledge findings on {grantee!r}")
    return role


def allow_list(grantee: iam.IGrantable, bucket: s3.IBucket, prefixes: Sequence[str]) -> None:
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        )
    )
