"""The price table of the cost model (``python -m local_twin.cost``): us-east-1 list prices, USD.

Prices as of ``PRICES_AS_OF``. Each entry says where it comes from and how it was checked:

- ``aws-docs``: read that day in AWS's own documentation or pricing page text (search corpora of this
  project: docs.aws.amazon.com, aws.amazon.com);
- ``cross-checked``: the figure the AWS pricing page shows in a table the corpora do not hold as text,
  confirmed by at least two independent third-party price tables (cost calculators, FinOps notes) dated
  2025-2026 and by memory; re-check these on the pricing page before quoting a customer;
- ``memory``: taken from memory of the pricing page, not confirmed that day.

Free tiers are left out on purpose (an account rarely holds this stack alone, and the 12-month ones end):
the bill is the list price from the first request. Nothing here is negotiated, reserved or a Savings Plan.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-11-30"
REGION = "us-east-1"
HOURS_PER_MONTH = 730.0  # AWS's own monthly-estimate convention (pricing calculator)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    checked: str  # aws-docs | cross-checked | memory


@dataclass(frozen=True)
class TieredPrice:
    """``tiers``: (size of the tier in ``unit``s, USD per unit); the last tier's size is infinite."""

    tiers: tuple[tuple[float, float], ...]
    unit: str
    source: str
    checked: str


INF = float("inf")

PRICES: dict[str, Price] = {
    # Lambda
    "lambda_request": Price(0.20 / 1e6, "request", "aws.amazon.com/lambda/pricing", "cross-checked"),
    "lambda_gb_s_x86": Price(0.0000166667, "GB-s", "aws.amazon.com/lambda/pricing (x86_64)", "cross-checked"),
    "lambda_gb_s_arm": Price(0.0000133334, "GB-s", "aws.amazon.com/lambda/pricing (arm64)", "cross-checked"),
    # SnapStart for Python (and .NET), checked 2026-11-30: the pricing page's SnapStart table is not text in
    # the corpora; the two figures are those of awsnegotiations.com/lambda-snapstart-cost-impact.html and
    # awsnegotiations.com/blog/lambda-snapstart-cost-impact/ (2026) and of memory of the pricing page. The
    # billing rules are in RULES below.
    "lambda_snapstart_cache_gb_s": Price(
        0.0000015046,
        "GB-s a version's snapshot is cached (function memory; minimum 3 hours per version)",
        "aws.amazon.com/lambda/pricing (SnapStart: Cache)",
        "cross-checked",
    ),
    "lambda_snapstart_restore_gb": Price(
        0.0001397998,
        "GB restored (function memory, per execution environment restored)",
        "aws.amazon.com/lambda/pricing (SnapStart: Restore)",
        "cross-checked",
    ),
    # Provisioned concurrency (the serving aliases past ~1.08M items, instead of SnapStart), checked
    # 2026-11-30 from memory of the pricing page only
    "lambda_pc_gb_s_x86": Price(
        0.0000041667,
        "GB-s provisioned (x86_64)",
        "aws.amazon.com/lambda/pricing (Provisioned Concurrency)",
        "memory",
    ),
    "lambda_pc_duration_gb_s_x86": Price(
        0.0000097222,
        "GB-s of duration on provisioned environments (x86_64)",
        "aws.amazon.com/lambda/pricing (Provisioned Concurrency)",
        "memory",
    ),
    "lambda_pc_gb_s_arm": Price(
        0.0000033334,
        "GB-s provisioned (arm64)",
        "aws.amazon.com/lambda/pricing (Provisioned Concurrency)",
        "memory",
    ),
    "lambda_pc_duration_gb_s_arm": Price(
        0.0000077778,
        "GB-s of duration on provisioned environments (arm64)",
        "aws.amazon.com/lambda/pricing (Provisioned Concurrency)",
        "memory",
    ),
    # DynamoDB on-demand: AWS halved on-demand throughput prices on 2024-11-01 (from 1.25 / 0.25 per million)
    "ddb_wru": Price(
        0.625 / 1e6, "write request unit", "aws.amazon.com/dynamodb/pricing/on-demand", "cross-checked"
    ),
    "ddb_rru": Price(
        0.125 / 1e6, "read request unit", "aws.amazon.com/dynamodb/pricing/on-demand", "cross-checked"
    ),
    "ddb_storage": Price(
        0.25, "GB-month", "aws.amazon.com/dynamodb/pricing (Standard table class)", "cross-checked"
    ),
    "ddb_pitr": Price(0.20, "GB-month", "aws.amazon.com/dynamodb/pricing (continuous backups)", "memory"),
    # Kinesis Data Streams: the stack's stream is ON_DEMAND (stacks/streaming_stack.py)
    "kds_od_stream_hour": Price(
        0.04, "stream-hour", "aws.amazon.com/kinesis/data-streams/pricing", "cross-checked"
    ),
    "kds_od_in_gb": Price(
        0.08,
        "GB in (records rounded up to 1 KB)",
        "aws.amazon.com/kinesis/data-streams/pricing",
        "cross-checked",
    ),
    "kds_od_out_gb": Price(
        0.04, "GB read per consumer", "aws.amazon.com/kinesis/data-streams/pricing", "cross-checked"
    ),
    "kds_shard_hour": Price(
        0.015, "shard-hour (provisioned)", "aws.amazon.com/kinesis/data-streams/pricing", "cross-checked"
    ),
    "kds_put_unit": Price(
        0.014 / 1e6,
        "PUT payload unit (25 KB)",
        "aws.amazon.com/kinesis/data-streams/pricing",
        "cross-checked",
    ),
    # Firehose, Kinesis stream as source, S3 destination, no format conversion or dynamic partitioning
    "firehose_gb": Price(
        0.029, "GB ingested (records rounded up to 5 KB)", "aws.amazon.com/firehose/pricing", "cross-checked"
    ),
    # S3 Standard
    "s3_gb_month": Price(0.023, "GB-month (first 50 TB)", "aws.amazon.com/s3/pricing", "cross-checked"),
    "s3_put": Price(0.005 / 1000, "PUT/COPY/POST/LIST request", "aws.amazon.com/s3/pricing", "cross-checked"),
    "s3_get": Price(0.0004 / 1000, "GET request", "aws.amazon.com/s3/pricing", "cross-checked"),
    # Training
    "sagemaker_m5_xlarge_hour": Price(
        0.23,
        "training instance-hour (ml.m5.xlarge)",
        "aws.amazon.com/sagemaker/pricing (Training, On-Demand)",
        "cross-checked",
    ),
    "emr_serverless_vcpu_hour": Price(
        0.052624, "vCPU-hour (x86)", "aws.amazon.com/emr/pricing (EMR Serverless)", "cross-checked"
    ),
    "emr_serverless_gb_hour": Price(
        0.0057785, "GB-hour (x86)", "aws.amazon.com/emr/pricing (EMR Serverless)", "cross-checked"
    ),
    # CloudWatch and X-Ray
    "logs_ingest_gb": Price(
        0.50, "GB ingested (Standard log class)", "aws.amazon.com/cloudwatch/pricing", "cross-checked"
    ),
    "logs_store_gb_month": Price(
        0.03, "GB-month archived", "aws.amazon.com/cloudwatch/pricing", "cross-checked"
    ),
    "metric_month": Price(
        0.30, "custom metric-month (first 10,000)", "aws.amazon.com/cloudwatch/pricing", "cross-checked"
    ),
    "alarm_month": Price(
        0.10, "standard-resolution alarm-month", "aws.amazon.com/cloudwatch/pricing", "cross-checked"
    ),
    "dashboard_month": Price(3.00, "dashboard-month", "aws.amazon.com/cloudwatch/pricing", "cross-checked"),
    "xray_trace": Price(5.00 / 1e6, "trace recorded", "aws.amazon.com/xray/pricing", "cross-checked"),
    # Amazon Personalize (custom solutions, real-time campaign)
    "personalize_training_hour": Price(
        0.24,
        "training hour (4 vCPU + 8 GiB for an hour)",
        "aws.amazon.com/personalize/pricing",
        "cross-checked",
    ),
    "personalize_ingest_gb": Price(
        0.05, "GB ingested (PutEvents or S3 import)", "aws.amazon.com/personalize/pricing", "cross-checked"
    ),
}

TIERED: dict[str, TieredPrice] = {
    "apigw_rest": TieredPrice(
        ((333e6, 3.50 / 1e6), (667e6, 2.80 / 1e6), (19e9, 2.38 / 1e6), (INF, 1.51 / 1e6)),
        "REST API request",
        "docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
        "cost-optimization.html (Table 4)",
        "aws-docs",
    ),
    "apigw_http": TieredPrice(
        ((300e6, 1.00 / 1e6), (INF, 0.90 / 1e6)),
        "HTTP API request (512 KB units)",
        "same AWS whitepaper, Table 4",
        "aws-docs",
    ),
    # API responses to browsers: data transfer out to the internet (API Gateway bills it at EC2's rates)
    "data_out": TieredPrice(
        ((10_240, 0.09), (40_960, 0.085), (102_400, 0.07), (INF, 0.05)),
        "GB out to the internet",
        "aws.amazon.com/ec2/pricing/on-demand (Data Transfer OUT to Internet);"
        " aws.amazon.com/api-gateway/pricing",
        "cross-checked",
    ),
    # $0.20 per TPS-hour is $0.0556 per 1,000 requests at full use; one third-party table quotes it that way
    "personalize_tps_hour": TieredPrice(
        ((20_000, 0.20), (180_000, 0.10), (INF, 0.05)),
        "TPS-hour (real-time recommendations; max(min provisioned TPS, actual TPS) per 5-minute window)",
        "aws.amazon.com/personalize/pricing; billing rule: docs.aws.amazon.com/personalize/latest/dg/"
        "API_CreateCampaign.html",
        "cross-checked",
    ),
}

# Rules of the services the model relies on, and where they are documented.
RULES = (
    (
        "DynamoDB item size: names + values; a number ~1 byte per 2 digits + 1; lists and maps 3 bytes"
        " + 1 per element",
        "docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html",
        "aws-docs",
    ),
    (
        "DynamoDB reads round each item up to 4 KB (half a unit eventually consistent), writes to 1 KB;"
        " UpdateItem pays for the larger of the item before and after",
        "docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html",
        "aws-docs",
    ),
    (
        "Kinesis shard: 1 MB/s or 1,000 records/s in; on-demand streams start at 4 MB/s and scale to"
        " twice the 30-day peak",
        "aws.amazon.com/kinesis/data-streams/pricing",
        "aws-docs",
    ),
    (
        "Lambda: 1,769 MB = one vCPU, CPU proportional below; duration billed per 1 ms; the INIT phase of"
        " a cold start is billed since 2025-08-01",
        "docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html;"
        " aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase",
        "aws-docs",
    ),
    (
        "Lambda SnapStart (Python, .NET): a snapshot cache billed per published version for as long as the"
        " version is active, at least 3 hours (the 3-hour minimum from memory of the pricing section);"
        " Lambda deletes a snapshot not invoked for 14 days",
        "docs.aws.amazon.com/lambda/latest/dg/snapstart.html#snapstart-pricing;"
        " docs.aws.amazon.com/lambda/latest/dg/snapstart-security.html",
        "aws-docs",
    ),
    (
        "Lambda SnapStart restore: a restore charge per GB of memory for each execution environment"
        " restored; its REPORT has no Init Duration (INIT runs when the version is published, with the"
        " before-snapshot hooks) but a Billed Restore Duration: loading the runtime and running the"
        " after-restore hooks, not the snapshot's restore itself",
        "docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html; aws.amazon.com/lambda/pricing",
        "aws-docs",
    ),
    (
        "Personalize bills max(minProvisionedTPS, actual TPS) per 5-minute window, default minimum 1 TPS"
        " per campaign; a training hour is 4 vCPU + 8 GiB for an hour, billed on compute, not wall hours",
        "docs.aws.amazon.com/personalize/latest/dg/API_CreateCampaign.html;"
        " aws.amazon.com/personalize/pricing",
        "aws-docs",
    ),
    (
        "Personalize training hours grow with interactions: User-Personalization on MovieLens, 2.135"
        " training hours at 100k interactions, 53.9 at 50M",
        "github.com/aws-samples/amazon-personalize-samples PersonalizeCheatSheet2.0.md"
        " (FAQ 'How can I predict the pricing of training')",
        "aws-docs",
    ),
    (
        "X-Ray default sampling rule: the first request each second, then 5% of the others",
        "docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-sampling",
        "cross-checked",
    ),
)


def price(name: str) -> float:
    return PRICES[name].usd


def tiered_cost(quantity: float, tiers: tuple[tuple[float, float], ...]) -> float:
    """USD for ``quantity`` units billed through consecutive tiers of (size, USD per unit)."""
    if quantity < 0:
        raise ValueError(f"quantity must be >= 0, not {quantity}")
    cost, left = 0.0, quantity
    for size, usd in tiers:
        used = min(left, size)
        cost += used * usd
        left -= used
        if left <= 0:
            break
    return cost
