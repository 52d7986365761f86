"""checkov suppressions, written into the template the way checkov documents them for CloudFormation.

A resource's ``Metadata.checkov.skip`` lists ``{"id": "CKV_AWS_...", "comment": reason}``; checkov then
reports the check as skipped with the reason instead of failed. Every suppression has a reason (the
infrastructure test refuses an empty one), like the cdk-nag acknowledgments.

The reasons shared by several resources live here, next to the helper, so each is written once.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnResource
from constructs import Construct

# Lambda: why each recurring check does not apply to this project's functions.
NO_VPC = (
    "The function calls only AWS service APIs (DynamoDB, S3, Kinesis, SQS, Lambda, SageMaker) over TLS "
    "with IAM; it reaches no private resource, so a VPC would only add NAT gateways or endpoints per AZ."
)
ENVIRONMENT_HAS_NO_SECRETS = (
    "The environment holds resource names and tuning settings, never a secret; Lambda encrypts it at rest "
    "with its AWS-managed key. A customer-managed key is a retailer's option, not a default."
)
LOGS_SERVICE_ENCRYPTED = (
    "CloudWatch Logs encrypts every log group at rest with service-managed keys; a customer-managed KMS "
    "key (billed per key, its policy opened to the logs service) is a retailer's option, not a default."
)
SYNCHRONOUS_NO_DLQ = (
    "Invoked synchronously by API Gateway (Lambda proxy): the caller gets the error, and a dead-letter "
    "queue only ever receives failed asynchronous invocations."
)
STREAM_NO_DLQ = (
    "Invoked by the Kinesis event source mapping, which is synchronous: failed batches go to the "
    "mapping's on-failure SQS destination (the events dead-letter queue), not a function DLQ."
)
API_THROTTLED_CONCURRENCY = (
    "Invoked by API Gateway, whose stage throttling (and the storefront's usage plan) bounds its request "
    "rate; reserving executions would take them from every other function in the account."
)
STREAM_BOUNDED_CONCURRENCY = (
    "Its concurrency is bounded by the stream: one invocation per shard (parallelization factor 1)."
)
SCHEDULED_RETRIED_NO_DLQ = (
    "Run every minute by EventBridge: a failed run leaves its hours in the dirty set, which the next run "
    "retries; a dead-letter queue of stale minute ticks would hold nothing to replay."
)
SSE_SQS = (
    "Encrypted at rest with SQS-managed server-side encryption (SqsManagedSseEnabled); this check only "
    "recognises a KMS key."
)


def skip_checks(scope: Construct, reasons: Mapping[str, str]) -> None:
    """Adds checkov skips (check id -> reason) to the CloudFormation resource behind ``scope``.

    ``scope`` is an L1 resource or an L2 construct whose default child is one; skips already present
    are kept, a check skipped twice keeps its latest reason.
    """
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to put checkov skips on")
    if not reasons or not all(reason.strip() for reason in reasons.values()):
        raise ValueError(f"{scope.node.path}: every checkov skip needs a reason")
    existing = resource.get_metadata("checkov") or {}
    skips = {skip["id"]: skip["comment"] for skip in existing.get("skip", [])}
    skips.update(reasons)
    resource.add_metadata(
        "checkov", {"skip": [{"id": check, "comment": comment} for check, comment in sorted(skips.items())]}
    )
