"""Every id, name, size and limit the stacks use, in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass

APP_NAME = "Merchandiser"
SERVICE_PREFIX = "merchandiser"
METRICS_NAMESPACE = "Merchandiser"  # FunctionSettings.metrics_namespace's default, every function's


@dataclass(frozen=True)
class StackNames:
    data: str = f"{APP_NAME}-Data"
    streaming: str = f"{APP_NAME}-Streaming"
    serving: str = f"{APP_NAME}-Serving"
    training: str = f"{APP_NAME}-Training"
    monitoring: str = f"{APP_NAME}-Monitoring"
    console: str = f"{APP_NAME}-Console"


STACK_NAMES = StackNames()

# Context keys (cdk.json or `-c key=value`) and their defaults.
CONTEXT_LAYERS_DIR = "merchandiser:layersDir"
CONTEXT_TRAINING_SCHEDULE = "merchandiser:trainingSchedule"
CONTEXT_TRAINING_IMAGE_URI = "merchandiser:trainingImageUri"
CONTEXT_CDK_NAG = "merchandiser:cdkNag"
CONTEXT_CATALOG_ITEMS = "merchandiser:catalogItems"
CONTEXT_CONSOLE = "merchandiser:console"  # "false": no console stack (the twin serves console/ itself)
CONTEXT_CONSOLE_DOMAIN_PREFIX = "merchandiser:consoleDomainPrefix"  # the staff sign-in page's Cognito domain
# The events stream's capacity mode (STREAM_MODES) and, when provisioned, the peak it is sized for.
CONTEXT_STREAM_MODE = "merchandiser:streamMode"
CONTEXT_PEAK_STREAM_RECORDS = "merchandiser:peakStreamRecordsPerSecond"
# The serving functions' SnapStart: "auto" (the default, serving_uses_snapstart's rule), "on" or "off".
CONTEXT_SNAPSTART = "merchandiser:snapStart"
DEFAULT_LAYERS_DIR = "build/layers"
DEFAULT_TRAINING_SCHEDULE = "rate(1 day)"
# The archive eraser: the bound README states for the archive ("within a day of the erasure").
ERASURE_SCHEDULE = "rate(1 day)"
# The trending compactor: how stale serving's trending may be past the hour's last count (about a minute).
COMPACTOR_INTERVAL_MINUTES = 1
# AWS Deep Learning Containers: the SageMaker PyTorch 2.6 CPU training image, Python 3.12 like the
# layers (https://github.com/aws/deep-learning-containers/blob/master/available_images.md).
# Only a string at synth time; for another region use -c merchandiser:trainingImageUri=...
DEFAULT_TRAINING_IMAGE_URI = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
)
TRAINING_INSTANCE_TYPE = "ml.m5.xlarge"

# Training on Spark (stacks/spark_training.py): EMR Serverless past SPARK_MIN_EVENTS archived events, the
# single-machine job's measured ceiling (issue "Scale": 10M interactions in <= 10 min and <= 8 GiB).
CONTEXT_EMR_PYTHON_ENV = "merchandiser:emrPythonEnv"  # S3 URI of the job run's venv-pack archive
SPARK_MIN_EVENTS = 10_000_000
EMR_RELEASE_LABEL = "emr-7.5.0"  # Spark 3.5, Python 3.9 on the image: the venv archive brings 3.12
EMR_IDLE_MINUTES = 15
EMR_MAX_CPU, EMR_MAX_MEMORY, EMR_MAX_DISK = "64 vCPU", "256 GB", "1000 GB"
# the state machine's bound; the job run's own is 3 h (merchandiser.publishing.engine.EMR_MAX_RUNTIME_MINUTES)
EMR_MAX_RUNTIME_HOURS = 4

# Layer folder names under the layers dir, and the command that builds each one. Layers hold code and
# dependencies only: the model is fetched from S3 (merchandiser.serving.model_source).
LAYER_NAMES = ("deps", "core")
LAYER_BUILD_COMMANDS = {
    "deps": "make layers  (python -m layers.build deps --out build/layers/deps)",
    "core": "make layers  (python -m layers.build core --out build/layers/core)",
}

# Functions: code in lambdas/<name>/, handler `handler.handler`.
SERVING_FUNCTIONS = ("retrieval", "ranking", "reranking")
FUNCTION_NAMES = (
    *SERVING_FUNCTIONS,
    "events_api",
    "catalog",
    "experiments",
    "event_processor",
    "trending_compactor",
    "start_training",
    "publish",
    "erasure",
    "experiment_report",
)
HANDLER = "handler.handler"
DEFAULT_MEMORY_MB = 512

# Serving functions are sized by the catalogue (context merchandiser:catalogItems, the number of items
# the model holds): the model lives in memory, and its files in /tmp, where they are fetched to.
DEFAULT_CATALOG_ITEMS = 100_000
# Bytes of model files per catalogue item: 806 measured on the 100k-item bench model (64 factors: index
# 409 B, item factors 256 B, signals 119 B, catalogue, popularity, ranker), rounded up for richer
# catalogues (longer titles, more segments).
MODEL_BYTES_PER_ITEM = 1_000
# Interpreter, numpy/LightGBM/hnswlib and a request's working set; 1,024 MB is the floor because Lambda
# gives CPU in proportion to memory, and the page's numpy work is CPU-bound.
SERVING_BASE_MEMORY_MB = 512
SERVING_MIN_MEMORY_MB = 1024
LAMBDA_MAX_MEMORY_MB = 10_240
# SnapStart supports no ephemeral storage over 512 MB (nor provisioned concurrency with it). A SnapStart
# function loads the model into memory, deleting its files as they are read
# (merchandiser.serving.model_source.load_into_memory): /tmp then holds at most the largest HNSW index or
# the other files together, 360 and 304 MB measured at 1,000,000 items (the placed items' index: 404 B per
# placed item, 90% of the catalogue); rounded up, per catalogue item.
SNAPSTART_MAX_EPHEMERAL_MB = 512
MODEL_LARGEST_TRANSIENT_BYTES_PER_ITEM = 450
# Where the serving functions start on demand and that start would miss the budget (past SnapStart's /tmp,
# or SnapStart turned off), this many containers per serving alias are kept initialised instead.
SERVING_PROVISIONED_CONCURRENCY = 2

# SnapStart only where the on-demand cold start needs it. SnapStart bills a snapshot cache per published
# version per GB of memory (local_twin/cost_bill.py add_snapstart): $23.72 a month at 100,000 items (2
# versions x 3 functions x 1,024 MB), the largest line of the engine's bill at 1 request/s, for a cold start
# that takes ~1.6 s on demand there. So the serving functions get SnapStart when the estimated on-demand init
# on Lambda exceeds SNAPSTART_ABOVE_INIT_S and the load into memory fits SnapStart's /tmp
# (serving_snapstart_fits); past that /tmp, provisioned concurrency as before; else a plain on-demand init,
# the model memory-mapped from /tmp. Context merchandiser:snapStart=on|off overrides the rule (SNAPSTART_*).
#
# The estimate: (imports + load per item x items) x max(1, 1769 / memory MB), from the serving bench's
# on-demand cold start on this machine's full core, 2026-11-30 (build/bench/serving.json, cold_start:
# imports_s 0.66 s, load_s 0.29 s at 100,000 items; the README's serving table), scaled to the vCPU share
# Lambda gives below 1,769 MB. The per-item load is 100,000 items' (2.9 us per item); a million items
# loaded in ~2.3 s (2.85 to 3.04 s with the imports), so above 100k the estimate errs long (3.56 s at 1M),
# toward SnapStart. It leaves out the files' download from S3 and its hash check (0.06 s at 100k, 0.5 s at
# 1M measured; the download not measurable here), and a Lambda core may be slower than this machine's.
SERVING_COLD_START_BUDGET_S = 3.0  # the scale issue's target (local_twin/bench_serving.py TARGETS)
SERVING_INIT_IMPORTS_S = 0.66
SERVING_INIT_LOAD_S_PER_ITEM = 0.29 / 100_000
LAMBDA_MB_PER_VCPU = 1769  # a function gets one full vCPU at 1,769 MB, that share of one below
# SnapStart when the estimate exceeds 2/3 of the 3 s budget: 1 s is left for what it leaves out (the
# download, the hash check, a slower host). 100,000 items: 1.64 s, on demand; SnapStart from 171,627 items
# (2.0 s at 1,024 MB) up to 1,084,587 (its /tmp); 1,000,000 items: 3.56 s, SnapStart.
SNAPSTART_ABOVE_INIT_S = 2.0
SNAPSTART_ON, SNAPSTART_OFF, SNAPSTART_AUTO = "on", "off", "auto"
SNAPSTART_SETTINGS = (SNAPSTART_AUTO, SNAPSTART_ON, SNAPSTART_OFF)
DEFAULT_SNAPSTART = SNAPSTART_AUTO
# How a serving function's containers start: restored from a SnapStart snapshot, initialised on demand,
# or on demand behind provisioned concurrency.
START_SNAPSTART, START_ON_DEMAND, START_PROVISIONED = "snapstart", "on-demand", "provisioned"


def model_mb(catalog_items: int) -> float:
    return catalog_items * MODEL_BYTES_PER_ITEM / 2**20


def _round_up(megabytes: float, step: int = 64) -> int:
    return int(-(-megabytes // step) * step)


def serving_memory_mb(catalog_items: int) -> int:
    """Base + twice the model: the loaded arrays and index, plus what is derived from them once per model
    (Gram matrix, placed factors, orders) and a load's transient copies."""
    wanted = _round_up(SERVING_BASE_MEMORY_MB + 2 * model_mb(catalog_items))
    return min(max(wanted, SERVING_MIN_MEMORY_MB), LAMBDA_MAX_MEMORY_MB)


def serving_init_estimate_s(catalog_items: int, memory_mb: int | None = None) -> float:
    """The on-demand init of a serving function on Lambda (imports + the model's load), in seconds, at
    ``memory_mb`` (default: serving_memory_mb of the catalogue)."""
    memory = serving_memory_mb(catalog_items) if memory_mb is None else memory_mb
    on_a_core = SERVING_INIT_IMPORTS_S + SERVING_INIT_LOAD_S_PER_ITEM * catalog_items
    return on_a_core * max(1.0, LAMBDA_MB_PER_VCPU / memory)


def serving_snapstart_fits(catalog_items: int) -> bool:
    """Whether what a load into memory holds in /tmp at once fits SnapStart's 512 MB with 10% to spare (up
    to about 1,080,000 items)."""
    transient_mb = catalog_items * MODEL_LARGEST_TRANSIENT_BYTES_PER_ITEM / 2**20
    return 1.1 * transient_mb <= SNAPSTART_MAX_EPHEMERAL_MB


def check_snapstart_setting(setting: str, catalog_items: int) -> None:
    """Raises ValueError for a setting other than on/off/auto, or "on" where the load does not fit /tmp."""
    if setting not in SNAPSTART_SETTINGS:
        raise ValueError(f"-c {CONTEXT_SNAPSTART}={setting}: expected one of {', '.join(SNAPSTART_SETTINGS)}")
    if setting == SNAPSTART_ON and not serving_snapstart_fits(catalog_items):
        transient_mb = catalog_items * MODEL_LARGEST_TRANSIENT_BYTES_PER_ITEM / 2**20
        raise ValueError(
            f"-c {CONTEXT_SNAPSTART}=on: at {catalog_items:,} items a load into memory holds"
            f" ~{transient_mb:,.0f} MB in /tmp at once, over SnapStart's {SNAPSTART_MAX_EPHEMERAL_MB} MB with"
            " 10% to spare (up to ~1,084,000 items); use auto or off (provisioned concurrency)"
        )


def serving_uses_snapstart(catalog_items: int, setting: str = DEFAULT_SNAPSTART) -> bool:
    """SnapStart for the serving functions: "auto" when the estimated on-demand init exceeds
    SNAPSTART_ABOVE_INIT_S and the load into memory fits SnapStart's /tmp; "on" and "off" as told ("on"
    past /tmp raises ValueError, as does any other setting)."""
    check_snapstart_setting(setting, catalog_items)
    if setting != SNAPSTART_AUTO:
        return setting == SNAPSTART_ON
    needed = serving_init_estimate_s(catalog_items) > SNAPSTART_ABOVE_INIT_S
    return needed and serving_snapstart_fits(catalog_items)


def serving_start_mode(catalog_items: int, setting: str = DEFAULT_SNAPSTART) -> str:
    """START_SNAPSTART (serving_uses_snapstart); else START_PROVISIONED where the on-demand init's estimate
    exceeds SNAPSTART_ABOVE_INIT_S (past SnapStart's /tmp, as before, or SnapStart off where it would be on);
    else START_ON_DEMAND."""
    if serving_uses_snapstart(catalog_items, setting):
        return START_SNAPSTART
    if serving_init_estimate_s(catalog_items) > SNAPSTART_ABOVE_INIT_S:
        return START_PROVISIONED
    return START_ON_DEMAND


def serving_ephemeral_mb(catalog_items: int, snap_start: bool | None = None) -> int:
    """With SnapStart, its 512 MB (the model loads into memory); else /tmp for the model's files
    (memory-mapped from there) with 10% to spare, Lambda's 512 MB at least. ``snap_start`` defaults to
    serving_uses_snapstart's rule."""
    if serving_uses_snapstart(catalog_items) if snap_start is None else snap_start:
        return SNAPSTART_MAX_EPHEMERAL_MB
    return min(max(_round_up(1.1 * model_mb(catalog_items)), 512), LAMBDA_MAX_MEMORY_MB)


SERVING_MEMORY_MB = serving_memory_mb(DEFAULT_CATALOG_ITEMS)  # at the default catalogue (the cost model's)


def live_model_parameter(stack_name: str) -> str:
    """The SSM parameter holding the live model version; written by publish, never by a template."""
    return f"/{stack_name}/live-model-version"


TIMEOUT_SECONDS = {
    "retrieval": 10,
    "ranking": 10,
    "reranking": 10,
    "events_api": 10,
    "catalog": 10,
    # computing a report on the request (the twin's DuckDB) may take seconds; API Gateway waits 29 s
    "experiments": 29,
    "event_processor": 60,
    # a dirty hour is a few Query pages and one PutItem; the next run starts a minute later
    "trending_compactor": 50,
    "start_training": 30,
    "publish": 300,
    "erasure": 900,  # reads every archive object once per new erasure
    # one Athena query per running experiment and one for the KPIs, each up to a few minutes
    "experiment_report": 900,
}
# Functions that need more than their kind's default: the eraser rewrites a model tarball in memory; publish
# holds every stored profile's 16-byte digest (merchandiser.store.StoredDigests): 83 MB at 10 requests/s
# (5.2M shoppers) fits 512 MB, 832 MB at 100/s (52M) does not; 1536 MB holds that with the runtime, the
# boto3 clients and a page per scan segment, and its larger CPU share parses the 8 segments' pages
MEMORY_MB = {"erasure": 2048, "publish": 1536}
LOG_RETENTION_DAYS = 30
# X-Ray. Lambda's own sampling (active tracing: 1 request a second + 5% of the rest) cannot be configured;
# it applies only to an invocation that arrives without an upstream sampling decision. API Gateway applies
# the account's sampling rules and passes its decision to the function in the trace header, so one rule on
# the API stage (stacks/serving_stack.py) sets the rate of every traced API request: 1% with no reservoir
# is ~2,600 traces a day at 1 request/s (pages + POST /events), enough for latency outliers and errors
# at a fraction of the default's cost (1/s + 5% traced ~3.2M a month at that load, $16).
XRAY_SAMPLING_RULE_NAME = f"{APP_NAME}-api"  # unique in the account and region, at most 32 characters
XRAY_SAMPLING_PRIORITY = 100  # evaluated before the account's Default rule (10000)
XRAY_SAMPLING_RATE = 0.01
XRAY_SAMPLING_RESERVOIR = 0
# Functions with no upstream sampling decision to follow and Lambda's fixed 1/s + 5% would trace nearly every
# invocation: the event processor's mapping invokes about once a second per shard (2.5M traces, $12 a
# month at 1 request/s). PassThrough: it records no trace of its own (its EMF metrics, logs and the stream's
# IteratorAge alarm watch it); any function invoked with a sampled header still traces. The trending
# compactor likewise: run every minute, each run would be traced (43,200 a month) for no question asked.
PASS_THROUGH_TRACING = ("event_processor", "trending_compactor")
# Reserved concurrency where one invocation at a time is the point: two training starts from one schedule
# tick, or two promotions moving the `live` aliases at once, must never overlap.
# The daily report job likewise: two runs at once would write the same reports twice. The trending compactor:
# two overlapping runs could put an hour's summary out of order (the earlier Query's last), leaving it stale
# until the hour's next count; a tick throttled meanwhile is retried by Lambda and finds the set emptied.
RESERVED_CONCURRENCY = {"start_training": 1, "publish": 1, "experiment_report": 1, "trending_compactor": 1}
# Functions that EventBridge invokes asynchronously: their failed events go to a dead-letter queue.
ASYNC_FUNCTIONS = ("start_training", "publish", "experiment_report")

# API routes: (method, path, function).
API_STAGE = "v1"
API_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/health", "retrieval"),
    ("GET", "/users/{user_id}/recommendations", "retrieval"),
    ("GET", "/users/{user_id}/candidates", "retrieval"),
    ("GET", "/items/{item_id}/similar", "retrieval"),
    ("GET", "/items/{item_id}/bought-together", "retrieval"),
    ("GET", "/items/popular", "retrieval"),
    ("POST", "/users/{user_id}/rank", "ranking"),
    ("POST", "/users/{user_id}/rerank", "reranking"),
    ("POST", "/events", "events_api"),
    ("PUT", "/items/{item_id}", "catalog"),
    ("DELETE", "/users/{user_id}", "catalog"),
    # admin (IAM-signed, like the catalogue's: ROUTE_ACCESS)
    ("GET", "/experiments", "experiments"),
    ("PUT", "/experiments/{name}", "experiments"),
    ("GET", "/experiments/{name}", "experiments"),
    ("DELETE", "/experiments/{name}", "experiments"),
    ("GET", "/experiments/{name}/report", "experiments"),
)
# Read-only routes for staff (the console), IAM-authorized like the catalogue's: the retrieval function
# serves them because it holds the live model (its alias is what a promotion moves).
STAFF_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/model", "retrieval"),
    ("GET", "/users/{user_id}/events", "retrieval"),
    ("GET", "/items", "retrieval"),
    ("GET", "/events/stats", "retrieval"),
    ("GET", "/kpis", "retrieval"),
)
API_ROUTES = API_ROUTES + STAFF_ROUTES
# The experiment routes (admin, IAM), which the console's Experiments view calls.
EXPERIMENT_ROUTES: tuple[tuple[str, str], ...] = tuple(
    (method, path) for method, path, function in API_ROUTES if function == "experiments"
)
# Every route the staff console calls: what its signed-in staff may invoke (stacks/console_stack.py).
CONSOLE_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/health"),
    ("GET", "/users/{user_id}/recommendations"),
    ("GET", "/items/{item_id}/similar"),
    ("GET", "/items/{item_id}/bought-together"),
    ("GET", "/items/popular"),
    ("PUT", "/items/{item_id}"),
    *((method, path) for method, path, _ in STAFF_ROUTES),
    *EXPERIMENT_ROUTES,
)
CONSOLE_LOG_DAYS = 90
# Who may call each route (every route in API_ROUTES has an entry; a route without one fails the synth):
# the storefront with its API key (x-api-key, usage plan), the retailer's back office signing with SigV4
# (IAM authorization), or anyone (the health check). Admin routes are every write that changes the
# catalogue, a shopper's data, an experiment or the model.
API_KEY, IAM, OPEN = "api_key", "iam", "open"
ROUTE_ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/health"): OPEN,
    ("GET", "/users/{user_id}/recommendations"): API_KEY,
    ("GET", "/users/{user_id}/candidates"): API_KEY,
    ("GET", "/items/{item_id}/similar"): API_KEY,
    ("GET", "/items/{item_id}/bought-together"): API_KEY,
    ("GET", "/items/popular"): API_KEY,
    ("POST", "/users/{user_id}/rank"): API_KEY,
    ("POST", "/users/{user_id}/rerank"): API_KEY,
    ("POST", "/events"): API_KEY,
    ("PUT", "/items/{item_id}"): IAM,
    ("DELETE", "/users/{user_id}"): IAM,
    **dict.fromkeys(EXPERIMENT_ROUTES, IAM),
    # the staff's read-only routes (the console's)
    **{(method, path): IAM for method, path, _ in STAFF_ROUTES},
}
API_THROTTLE_RATE = 100
API_THROTTLE_BURST = 200
# API Gateway gzips an answer of at least this many bytes for a client that accepts it (browsers do): a page
# of recommendations is ~3 KB of JSON (~0.3 of that gzipped); POST /events' 202 (~120 B) stays as it is,
# since compressing a few hundred bytes gains nothing and costs latency.
API_MIN_COMPRESSION_BYTES = 1_024
# The storefront's usage plan (its API key): steady requests per second, burst, and requests per day.
USAGE_PLAN_RATE = API_THROTTLE_RATE
USAGE_PLAN_BURST = API_THROTTLE_BURST
USAGE_PLAN_QUOTA_PER_DAY = 5_000_000

# Event stream and its consumer.
STREAM_RETENTION_HOURS = 24
# Capacity mode (context merchandiser:streamMode). "provisioned" (the default): shards for the shop's peak,
# $0.015 a shard-hour ($10.95 a month for one) + $0.014 per million 25 KB PUT units. "on-demand": no
# sizing, for a shop whose spikes cannot be predicted, but $0.04 a stream-hour ($29.20 a month) whatever
# the traffic, + $0.08/GB in and $0.04/GB out per consumer.
STREAM_MODE_PROVISIONED, STREAM_MODE_ON_DEMAND = "provisioned", "on-demand"
STREAM_MODES = (STREAM_MODE_PROVISIONED, STREAM_MODE_ON_DEMAND)
DEFAULT_STREAM_MODE = STREAM_MODE_PROVISIONED
# Records a second put on the stream at the shop's peak (context merchandiser:peakStreamRecordsPerSecond):
# behaviour events (POST /events) + one impression per served page. The default is a small shop's: one
# shard's 1,000 records a second with half to spare; the 1 request/s the cost goal prices peaks near 6.
DEFAULT_PEAK_STREAM_RECORDS_PER_SECOND = 500
# What one provisioned shard takes in (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html)
SHARD_RECORDS_PER_SECOND = 1_000
SHARD_BYTES_PER_SECOND = 1024 * 1024
# A record's bytes at most on average: an event is ~350 B of JSON, an impression ~500 B.
STREAM_RECORD_BYTES = 1_024


def stream_shards(peak_records_per_second: float, peak_bytes_per_second: float | None = None) -> int:
    """Provisioned shards for a peak: enough for 1,000 records and 1 MB a second each, at least one.
    ``peak_bytes_per_second`` defaults to the peak records at STREAM_RECORD_BYTES each."""
    if peak_bytes_per_second is None:
        peak_bytes_per_second = peak_records_per_second * STREAM_RECORD_BYTES
    return max(
        1,
        math.ceil(peak_records_per_second / SHARD_RECORDS_PER_SECOND),
        math.ceil(peak_bytes_per_second / SHARD_BYTES_PER_SECOND),
    )


ESM_BATCH_SIZE = 100
# No batching window: the mapping invokes as soon as a poll finds records, so an event reaches the
# shopper's session within about one poll (the freshness target). Under load, batches fill up to
# ESM_BATCH_SIZE on their own, which is what keeps DynamoDB writes per event low.
ESM_MAX_BATCHING_WINDOW_SECONDS = 0
ESM_RETRY_ATTEMPTS = 3
# The event processor's concurrent batches per shard (the mapping's ParallelizationFactor, 1 to 10; a
# partition key's records, one shopper's, stay in order): enough for the peak at PROCESSOR_RECORDS_PER_SECOND
# each. One processor gets through ~125 records a second (local_twin.cost_model: a batch of 100 in ~780 ms at
# 512 MB, its CPU and DynamoDB calls). An on-demand stream's 4 shards gave 4 processors at once; one
# provisioned shard gives 1 without this. On demand: 1 per shard, as the shards follow the load.
PROCESSOR_RECORDS_PER_SECOND = 125
ESM_MAX_PARALLELIZATION_FACTOR = 10


def esm_parallelization_factor(peak_records_per_second: float, shards: int) -> int:
    per_shard = peak_records_per_second / max(shards, 1) / PROCESSOR_RECORDS_PER_SECOND
    return min(ESM_MAX_PARALLELIZATION_FACTOR, max(1, math.ceil(per_shard)))


ESM_MAX_RECORD_AGE_HOURS = 1
DLQ_RETENTION_DAYS = 14
SESSION_TTL_ATTRIBUTE = "expires_at"

# Raw-stream archive (Firehose -> S3); the bucket layout itself is merchandiser.store.archive's. One
# delivery stream, dynamic partitioning on the record's type: impression records (record_type
# "impression") under impressions/, everything else under events/, both by arrival date.
ARCHIVE_TABLE_KEY = "table"
ARCHIVE_TABLE_QUERY = '{table: (if .record_type == "impression" then "impressions" else "events" end)}'
ARCHIVE_PREFIX = (
    "!{partitionKeyFromQuery:table}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
)
ARCHIVE_ERRORS = "events-errors/"
ARCHIVE_ERROR_PREFIX = ARCHIVE_ERRORS + "!{firehose:error-output-type}/year=!{timestamp:yyyy}/"
ARCHIVE_FILE_EXTENSION = ".jsonl.gz"
ARCHIVE_BUFFER_SECONDS = 300
ARCHIVE_BUFFER_MB = 64

# The daily experiment report job (stacks/report_job.py): Athena over Glue tables of the archive.
GLUE_DATABASE = "merchandiser_archive"
ATHENA_WORKGROUP = "merchandiser-reports"
ATHENA_BYTES_SCANNED_CUTOFF = 100 * 1024**3  # a runaway query stops at 100 GB ($0.49 at $5/TB)
ARCHIVE_FIRST_YEAR_RANGE = "2024,2100"  # partition projection's years
REPORT_SCHEDULE = "cron(30 2 * * ? *)"  # 02:30 UTC, after the day's last Firehose buffers are in S3

# The canary of a new model (or new code): CodeDeploy's predefined CANARY_10PERCENT_5MINUTES, 10% of the
# traffic for 5 minutes, then all of it; rolled back if a serving alias errs or slows down meanwhile.
CANARY_ERRORS_PER_MINUTE = 5
CANARY_P99_MS = 1_000
CANARY_LATENCY_PERIODS = 2  # minutes in a row above it

# Alarms.
ALARM_5XX_RATE = 0.01
ALARM_ITERATOR_AGE_MS = 60_000
ALARM_DLQ_VISIBLE = 1
# Online KPIs (the daily job's metrics): a surface's CTR below this share of its 7-day baseline alarms.
ALARM_CTR_RATIO = 0.7
