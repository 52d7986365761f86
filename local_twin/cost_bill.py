"""The monthly bill of the stack, line by line (Amazon Personalize's is ``local_twin.cost_personalize``).

Every quantity is per month (``SECONDS_PER_MONTH``); prices come from ``local_twin.cost_prices``.
"""

from __future__ import annotations

import math

from local_twin.cost_model import (
    COUNTER_HOURS_KEPT,
    DAYS_PER_MONTH,
    DYNAMODB_MAX_ITEM_BYTES,
    DYNAMODB_STORAGE_OVERHEAD_BYTES,
    GB,
    KINESIS_CONSUMERS,
    LAMBDA_XRAY_RATE,
    LAMBDA_XRAY_RESERVOIR_PER_S,
    MB,
    VERSION_ITEM_BYTES,
    Assumed,
    Bill,
    Line,
    Load,
    Measured,
    StackConfig,
    Traffic,
    catalogue_writes,
    compaction,
    count_item_bytes,
    cpu_share,
    distinct_in_batch,
    item_bytes,
    lambda_gb_s,
    mean_session_units,
    profile_item_bytes,
    read_units,
    traffic,
    write_units,
)
from local_twin.cost_prices import HOURS_PER_MONTH, SECONDS_PER_MONTH, TIERED, price, tiered_cost
from merchandiser.retrieval import SOURCES
from merchandiser.serving import FALLBACKS, STAGES
from merchandiser.store import COUNTS_PER_TRANSACTION, DIGEST_SCAN_SEGMENTS, OVERLAY_KEY, OverlayItem
from stacks import constants as c

# DynamoDB bills a transactional write 2 write units per item (per KB), twice a plain write's
TRANSACTION_WRU = 2

# Metric series per month (standard resolution, one per name and dimension set): the retrieval function's
# serving metrics (merchandiser/serving/metrics.py) + ColdStart, POST /events' two, the processor's nine,
# and API Gateway's seven detailed metrics per method with traffic (the stage sets metrics_enabled).
RETRIEVAL_METRICS = (
    len(STAGES) + len(SOURCES) + len(("ItemsServed", "DegradedResponses")) + len(FALLBACKS) + 1
)
EVENTS_API_METRICS = 2
PROCESSOR_METRICS = 9
COMPACTOR_METRICS = 3  # lambdas/trending_compactor: HoursCompacted, HoursFailed, HoursTruncated
API_METRICS_PER_METHOD = 7
SERVICES = (
    "API Gateway",
    "Lambda",
    "DynamoDB",
    "Kinesis",
    "Firehose",
    "S3",
    "Training",
    "CloudWatch",
    "X-Ray",
)
# The storefront's front: what a shop on Amazon Personalize runs too, in front of its campaign (Personalize
# gives a campaign and PutEvents, not an HTTP API for browsers, nor its logs, metrics and traces).
FRONT_SERVICES = ("API Gateway", "CloudWatch", "X-Ray")
FRONT_FUNCTIONS = ("events_api",)  # POST /events: the storefront's events endpoint (PutEvents behind it)
FRONT_RULE = (
    "front = every API Gateway line (REST requests, data out), the events_api Lambda (requests, compute), "
    "every CloudWatch line (logs, metrics, alarms, dashboard) and X-Ray"
)
SNAPSTART_MIN_CACHE_S = 3 * 3600.0  # a version's snapshot cache is billed for at least 3 hours
OVERLAY_SAMPLE = OverlayItem("sku-88213", "Merino crew-neck jumper", "knitwear", "Acme", 39.9, True)


def is_front(line: Line) -> bool:
    """Whether a line of this stack's bill is the storefront's front (FRONT_RULE)."""
    if line.service in FRONT_SERVICES:
        return True
    return line.service == "Lambda" and line.item.split(":")[0] in FRONT_FUNCTIONS


def front_usd(bill: Bill) -> float:
    return sum(line.usd for line in bill.lines if is_front(line))


def add_snapstart(
    bill: Bill,
    load: Load,
    measured: Measured,
    assumed: Assumed,
    config: StackConfig,
    cold_starts: float,
    gb_s_usd: float,
) -> None:
    """SnapStart's lines in place of the cold starts' INIT (cost_prices.RULES): the snapshots cached, the
    restores, the Billed Restore Duration of each restore, and the INIT each published version runs once."""
    serving_mb = config.serving_memory_mb
    serving_gb = serving_mb / 1024.0
    versions = DAYS_PER_MONTH / load.training_cadence_days  # per function: one per training
    cached_s = max(
        config.snapstart_versions_kept * load.training_cadence_days * 86_400, SNAPSTART_MIN_CACHE_S
    )
    cache_gb_s = config.serving_functions * versions * cached_s * serving_gb
    bill.add(
        "Lambda",
        f"serving: SnapStart cache, {config.snapstart_versions_kept} versions x "
        f"{config.serving_functions} functions x {serving_mb} MB",
        cache_gb_s,
        "GB-s",
        cache_gb_s * price("lambda_snapstart_cache_gb_s"),
    )
    restored_gb = cold_starts * serving_gb
    bill.add(
        "Lambda",
        f"retrieval: {cold_starts:,.0f} cold starts restored from the snapshot",
        restored_gb,
        "GB",
        restored_gb * price("lambda_snapstart_restore_gb"),
    )
    restore_ms = assumed.snapstart_runtime_load_ms + measured.restore_hooks_s * 1000.0 / cpu_share(serving_mb)
    restore_gb_s = lambda_gb_s(cold_starts, restore_ms, serving_mb)
    bill.add(
        "Lambda",
        f"retrieval: {cold_starts:,.0f} restores x {math.ceil(restore_ms)} ms billed (runtime, hook)",
        restore_gb_s,
        "GB-s",
        restore_gb_s * gb_s_usd,
    )
    init_ms = measured.cold_start_s * 1000.0 / cpu_share(serving_mb)
    init_gb_s = lambda_gb_s(config.serving_functions * versions, init_ms, serving_mb)
    bill.add(
        "Lambda",
        f"serving: INIT once per published version ({config.serving_functions * versions:,.0f} versions)",
        init_gb_s,
        "GB-s",
        init_gb_s * gb_s_usd,
    )


def stack_bill(load: Load, measured: Measured, assumed: Assumed, config: StackConfig) -> Bill:
    bill = Bill()
    t = traffic(load, config)

    api_requests = t.pages + t.event_calls
    bill.add(
        "API Gateway",
        "REST requests: pages + POST /events calls",
        api_requests,
        "requests",
        tiered_cost(api_requests, TIERED["apigw_rest"].tiers),
    )

    def sent(body: float) -> float:
        """Bytes of an answer's body as sent: gzip'd from the API's minimum compression size up."""
        compressed = config.compressed_responses and body >= config.min_compression_bytes
        return body * assumed.response_gzip_ratio if compressed else body

    out_gb = (
        t.pages * (sent(measured.response_bytes_per_page) + assumed.response_header_bytes)
        + t.event_calls * (sent(assumed.events_response_bytes) + assumed.response_header_bytes)
    ) / GB
    bill.add(
        "API Gateway",
        "data out to browsers: pages + POST /events answers",
        out_gb,
        "GB",
        tiered_cost(out_gb, TIERED["data_out"].tiers),
    )

    # -- Lambda ----------------------------------------------------------------------------------------
    gb_s_usd = price("lambda_gb_s_arm" if config.arm64 else "lambda_gb_s_x86")
    serving_mb, other_mb = config.serving_memory_mb, config.default_memory_mb
    # The bench runs on one full core; below 1,769 MB a function gets that share of a vCPU.
    serving_ms = (
        measured.handler_ms / cpu_share(serving_mb) + assumed.dynamodb_call_ms + assumed.kinesis_put_ms
    )
    sandboxes = math.ceil(load.peak_to_average * load.rps * serving_ms / 1000.0) + 1
    cold_starts = sandboxes * HOURS_PER_MONTH / assumed.sandbox_lifetime_hours
    shoppers_per_batch = t.events_per_event_batch  # one event per shopper per (about one second) batch
    # one TransactWriteItems per COUNTS_PER_TRANSACTION (hour, item) ADDs, the dirty set's ADD in each
    counted = distinct_in_batch(load, t)
    counter_calls = max(1.0, math.ceil(counted / COUNTS_PER_TRANSACTION))
    compactor = compaction(load, assumed, config)
    calls_per_batch = (
        measured.reads_per_batch + shoppers_per_batch * measured.writes_per_shopper_batch + counter_calls
    )
    processor_ms = (
        t.records_per_batch * measured.processor_cpu_ms_per_event / cpu_share(other_mb)
        + (t.event_batches / t.batches if t.batches else 0.0) * calls_per_batch * assumed.dynamodb_call_ms
    )
    busy = t.batches / SECONDS_PER_MONTH / (t.shards * t.parallelization) * processor_ms / 1000.0
    if busy > 1.0:
        bill.notes.append(
            f"each of the {t.parallelization} event processor(s) per shard is busy {busy:.0%} of the time: "
            "it falls behind unless the mapping's ParallelizationFactor is raised"
        )
    # The stack's start mode (constants.serving_start_mode): SnapStart, on demand, or provisioned concurrency
    # (past ~1.08M items): a page served on a provisioned environment pays the lower duration price; those
    # beyond their concurrency spill to on-demand.
    mode = c.serving_start_mode(load.catalog_items, config.snap_start)
    concurrency = load.rps * serving_ms / 1000.0
    provisioned = mode == c.START_PROVISIONED
    on_provisioned = min(1.0, config.provisioned_concurrency / max(concurrency, 1e-9)) if provisioned else 0.0
    arch = "arm" if config.arm64 else "x86"
    for name, invocations, ms, mb in (
        ("retrieval", t.pages, serving_ms, serving_mb),
        ("events_api", t.event_calls, assumed.events_api_ms, other_mb),
        ("event_processor", t.batches, processor_ms, other_mb),
        ("trending_compactor", compactor.runs, compactor.mean_ms, other_mb),
    ):
        bill.add(
            "Lambda", f"{name}: requests", invocations, "requests", invocations * price("lambda_request")
        )
        gb_s = lambda_gb_s(invocations, ms, mb)
        share = on_provisioned if name == "retrieval" else 0.0
        usd = gb_s * (share * price(f"lambda_pc_duration_gb_s_{arch}") + (1.0 - share) * gb_s_usd)
        where = f" ({share:.0%} on provisioned environments)" if share else ""
        bill.add("Lambda", f"{name}: {math.ceil(ms)} ms x {mb} MB{where}", gb_s, "GB-s", usd)
    if mode == c.START_SNAPSTART:
        add_snapstart(bill, load, measured, assumed, config, cold_starts, gb_s_usd)
    else:
        if provisioned:
            # priced at config.serving_memory_mb like every serving line (set it for the catalogue priced)
            provisioned_gb_s = config.serving_functions * config.provisioned_concurrency * serving_mb / 1024.0
            provisioned_gb_s *= SECONDS_PER_MONTH
            bill.add(
                "Lambda",
                f"serving: provisioned concurrency, {config.provisioned_concurrency} per live alias x "
                f"{config.serving_functions} x {serving_mb} MB",
                provisioned_gb_s,
                "GB-s",
                provisioned_gb_s * price(f"lambda_pc_gb_s_{arch}"),
            )
        # each cold start bills its INIT (cost_prices.RULES), at the on-demand init the stack's start mode
        # was chosen by (constants.serving_init_estimate_s: the bench's imports + load, at this memory's CPU)
        init_ms = c.serving_init_estimate_s(load.catalog_items, serving_mb) * 1000.0
        init_gb_s = lambda_gb_s(cold_starts, init_ms, serving_mb)
        bill.add(
            "Lambda",
            f"retrieval: {cold_starts:,.0f} cold starts x {math.ceil(init_ms):,} ms (INIT billed)",
            init_gb_s,
            "GB-s",
            init_gb_s * gb_s_usd,
        )

    # -- DynamoDB --------------------------------------------------------------------------------------
    session_bytes, session_rru, session_rru_strong, session_wru = mean_session_units(
        load.events_per_shopper_month
    )
    profile = profile_item_bytes(min(round(load.events_per_shopper_month), 200))
    page_rru = read_units(profile, consistent=False) + session_rru
    bill.add(
        "DynamoDB",
        f"page reads: 1 BatchGetItem (profile + session) = {page_rru:g} RRU",
        t.pages * page_rru,
        "RRU",
        t.pages * page_rru * price("ddb_rru"),
    )
    overlay = {
        "item_id": OVERLAY_KEY,
        "items": {f"sku-{n:05d}": OVERLAY_SAMPLE.to_record() for n in range(load.overlay_items)},
    }
    version_rru = t.pages * read_units(VERSION_ITEM_BYTES, consistent=True)
    bill.add(
        "DynamoDB",
        "catalogue version: 1 strongly consistent GetItem per page",
        version_rru,
        "RRU",
        version_rru * price("ddb_rru"),
    )
    # the overlay itself is read again by each sandbox only when the version moved: per catalogue write
    overlay_rru = catalogue_writes(load) * sandboxes * read_units(item_bytes(overlay), consistent=True)
    bill.add(
        "DynamoDB",
        "catalogue overlay: 1 GetItem per sandbox after each catalogue write",
        overlay_rru,
        "RRU",
        overlay_rru * price("ddb_rru"),
    )
    batch_rru = measured.reads_per_batch * shoppers_per_batch * session_rru_strong
    bill.add(
        "DynamoDB",
        "event batches: sessions read (strongly consistent)",
        t.event_batches * batch_rru,
        "RRU",
        t.event_batches * batch_rru * price("ddb_rru"),
    )
    session_writes = t.event_batches * shoppers_per_batch * measured.writes_per_shopper_batch * session_wru
    bill.add(
        "DynamoDB",
        f"event batches: session PutItem ({session_wru:.1f} WRU mean)",
        session_writes,
        "WRU",
        session_writes * price("ddb_wru"),
    )
    # a transactional write bills 2 write units an item: each count and the dirty set in each transaction
    counter_writes = t.event_batches * TRANSACTION_WRU * (counted + counter_calls)
    bill.add(
        "DynamoDB",
        "trending: an ADD per (hour, item) of a batch + its hours marked, 99 to a transaction (2 WRU each)",
        counter_writes,
        "WRU",
        counter_writes * price("ddb_wru"),
    )
    bill.add(
        "DynamoDB",
        f"trending compactor: Query of each dirty hour's counts ({human_count(compactor.items_per_hour)} "
        "items an hour)",
        compactor.query_rru,
        "RRU",
        compactor.query_rru * price("ddb_rru"),
    )
    compactor_wru = compactor.summary_wru + compactor.dirty_set_units
    bill.add(
        "DynamoDB",
        f"trending compactor: PutItem of hours' summaries (top {config.trending_top_per_hour:,}) + dirty set",
        compactor_wru,
        "WRU",
        compactor_wru * price("ddb_wru"),
    )
    if compactor.summary_bytes > DYNAMODB_MAX_ITEM_BYTES:
        bill.notes.append(
            f"an hour's trending summary would reach {compactor.summary_bytes / 1024:,.0f} KB: over "
            "DynamoDB's 400 KB item limit, so the compactor's PutItem fails (lower TRENDING_TOP_PER_HOUR)"
        )
    profiles = load.shoppers_in_window
    window_profile = profile_item_bytes(round(load.interactions_in_window / profiles))
    runs = DAYS_PER_MONTH / load.training_cadence_days
    # publish reads every stored profile's digest (a Scan: billed by the items' size read, 0.5 RRU per 4 KB
    # eventually consistent, 1 MB a page), then writes the profiles whose digest changed
    scanned = profiles * window_profile
    scan_reads = runs * read_units(math.ceil(scanned), consistent=False)
    bill.add(
        "DynamoDB",
        f"publish: scan of the profiles' digests ({scanned / GB:,.2f} GB read per training)",
        scan_reads,
        "RRU",
        scan_reads * price("ddb_rru"),
    )
    written = profiles if config.history_decayed_at_training else load.profiles_changed_per_training
    profile_writes = runs * written * write_units(window_profile)
    bill.add(
        "DynamoDB",
        f"publish: writes of {human_count(written)} shopper profiles per training (their digest changed)",
        profile_writes,
        "WRU",
        profile_writes * price("ddb_wru"),
    )
    # the Scan's segments read their pages at once; then every profile of the window is read and digested
    # (CPU, at the function's share of a vCPU) and the changed ones written 25 a call
    publish_mb = config.publish_memory_mb
    scan_s = math.ceil(math.ceil(scanned / MB) / DIGEST_SCAN_SEGMENTS) * assumed.scan_ms_per_page / 1000.0
    digest_s = profiles * window_profile * assumed.digest_ns_per_profile_byte / 1e9 / cpu_share(publish_mb)
    write_s = written / assumed.profiles_per_write_call * assumed.dynamodb_call_ms / 1000.0
    publish_s = scan_s + digest_s + write_s
    if publish_s > c.TIMEOUT_SECONDS["publish"]:
        bill.notes.append(
            f"the publish function would scan digests and write profiles for {publish_s:,.0f} s per "
            f"training ({scan_s:,.0f} s scanning in {DIGEST_SCAN_SEGMENTS} segments, {digest_s:,.0f} s "
            f"digesting, {write_s:,.0f} s writing): over its {c.TIMEOUT_SECONDS['publish']} s timeout"
        )
    digests_mb = profiles * assumed.digest_bytes_in_memory / MB
    if digests_mb > publish_mb:
        bill.notes.append(
            f"the publish function would hold {human_count(profiles)} stored digests ({digests_mb:,.0f} MB): "
            f"over its {publish_mb} MB of memory"
        )
    publish_gb_s = lambda_gb_s(runs, publish_s * 1000.0, publish_mb)
    bill.add(
        "Lambda",
        f"publish: {runs:.0f} runs x {publish_s:,.0f} s scanning digests and writing profiles",
        publish_gb_s,
        "GB-s",
        publish_gb_s * gb_s_usd,
    )
    stored = (
        profiles * (window_profile + DYNAMODB_STORAGE_OVERHEAD_BYTES)
        + load.shoppers * (session_bytes + DYNAMODB_STORAGE_OVERHEAD_BYTES)
        + COUNTER_HOURS_KEPT
        * (
            compactor.items_per_hour * (count_item_bytes() + DYNAMODB_STORAGE_OVERHEAD_BYTES)
            + compactor.summary_bytes
            + DYNAMODB_STORAGE_OVERHEAD_BYTES
        )
    ) / GB
    bill.add(
        "DynamoDB",
        "storage + point-in-time recovery",
        stored,
        "GB-month",
        stored * (price("ddb_storage") + price("ddb_pitr")),
    )

    # -- Kinesis, Firehose, S3 -------------------------------------------------------------------------
    event_kb, impression_kb = math.ceil(load.event_bytes / 1024), math.ceil(load.impression_bytes / 1024)
    if config.kinesis_on_demand:
        bill.add(
            "Kinesis",
            "on-demand stream",
            HOURS_PER_MONTH,
            "stream-hours",
            HOURS_PER_MONTH * price("kds_od_stream_hour"),
        )
        gb_in = (t.events * event_kb + t.pages * impression_kb) / MB
        bill.add(
            "Kinesis",
            "data in: events + impressions (1 KB units)",
            gb_in,
            "GB",
            gb_in * price("kds_od_in_gb"),
        )
        gb_out = gb_in * KINESIS_CONSUMERS
        bill.add(
            "Kinesis",
            f"data out: {KINESIS_CONSUMERS} consumers",
            gb_out,
            "GB",
            gb_out * price("kds_od_out_gb"),
        )
    else:
        shard_hours = t.shards * HOURS_PER_MONTH
        bill.add(
            "Kinesis",
            f"{t.shards} provisioned shard(s) for {load.peak_to_average:g}x the average, "
            f"{t.parallelization} processor(s) each",
            shard_hours,
            "shard-hours",
            shard_hours * price("kds_shard_hour"),
        )
        units = t.events * math.ceil(load.event_bytes / 25600) + t.pages * math.ceil(
            load.impression_bytes / 25600
        )
        bill.add("Kinesis", "PUT payload units (25 KB)", units, "units", units * price("kds_put_unit"))
    firehose_gb = (
        (t.events * math.ceil(load.event_bytes / 5120) + t.pages * math.ceil(load.impression_bytes / 5120))
        * 5
        / MB
    )
    bill.add(
        "Firehose",
        "ingested: records rounded up to 5 KB",
        firehose_gb,
        "GB",
        firehose_gb * price("firehose_gb"),
    )
    raw_bytes = t.events * load.event_bytes + t.pages * load.impression_bytes
    archive_gb = raw_bytes * assumed.archive_gzip_ratio * load.archive_months / GB
    model_gb = load.catalog_items * assumed.model_bytes_per_item * assumed.model_versions_kept / GB
    bill.add(
        "S3",
        f"archive ({load.archive_months:g} months, gzip) + model versions",
        archive_gb + model_gb,
        "GB-month",
        (archive_gb + model_gb) * price("s3_gb_month"),
    )
    objects_per_day = max(
        86400.0 / c.ARCHIVE_BUFFER_SECONDS, raw_bytes / DAYS_PER_MONTH / (c.ARCHIVE_BUFFER_MB * MB)
    )
    puts, gets = objects_per_day * DAYS_PER_MONTH, objects_per_day * load.training_window_days * runs
    bill.add(
        "S3",
        "Firehose PUTs + training GETs of the window",
        puts + gets,
        "requests",
        puts * price("s3_put") + gets * price("s3_get"),
    )

    training_lines(bill, load, measured, assumed)
    observability_lines(bill, load, measured, assumed, config, t)
    bill.lines.sort(key=lambda line: SERVICES.index(line.service))  # stable: each service's lines in order
    return bill


def human_count(value: float) -> str:
    return f"{value / 1e6:,.1f}M" if value >= 1e6 else f"{value / 1e3:,.0f}k"


def training_lines(bill: Bill, load: Load, measured: Measured, assumed: Assumed) -> None:
    interactions = load.interactions_in_window
    runs = DAYS_PER_MONTH / load.training_cadence_days
    limit = assumed.training_instance_gib * GB * 0.85 / assumed.training_bytes_per_interaction
    work_hours = interactions * assumed.training_s_per_interaction / 3600.0
    if interactions <= limit:
        hours = runs * (assumed.training_overhead_hours + work_hours)
        bill.add(
            "Training",
            f"SageMaker ml.m5.xlarge: {runs:.0f} runs x {hours / runs * 60:.0f} min "
            f"({interactions / 1e6:,.1f}M interactions)",
            hours,
            "instance-hours",
            hours * price("sagemaker_m5_xlarge_hour"),
        )
        return
    vcpu_hours = runs * work_hours * measured.spark_overhead
    gb_hours = vcpu_hours * assumed.emr_gb_per_vcpu
    bill.add(
        "Training",
        f"EMR Serverless: {runs:.0f} runs over {interactions / 1e9:,.2f}B interactions",
        vcpu_hours,
        "vCPU-hours",
        vcpu_hours * price("emr_serverless_vcpu_hour"),
    )
    bill.add(
        "Training", "EMR Serverless memory", gb_hours, "GB-hours", gb_hours * price("emr_serverless_gb_hour")
    )
    bill.notes.append(
        f"{interactions / 1e6:,.0f}M interactions exceed one ml.m5.xlarge ({limit / 1e6:,.0f}M): Spark on"
        f" EMR Serverless, at {measured.spark_overhead:.2g}x the single machine's CPU time (the Spark bench's"
        " ratio, local mode)"
    )


def observability_lines(
    bill: Bill, load: Load, measured: Measured, assumed: Assumed, config: StackConfig, t: Traffic
) -> None:
    log_bytes = (
        t.pages * (measured.log_bytes_per_page + assumed.platform_log_bytes + assumed.access_log_bytes)
        + t.event_calls
        * (assumed.events_api_log_bytes + assumed.platform_log_bytes + assumed.access_log_bytes)
        + t.batches * (assumed.processor_log_bytes + assumed.platform_log_bytes)
        + compaction(load, assumed, config).runs * (assumed.compactor_log_bytes + assumed.platform_log_bytes)
    )
    log_gb = log_bytes / GB
    bill.add(
        "CloudWatch",
        "logs ingested (EMF metrics, logs, access logs)",
        log_gb,
        "GB",
        log_gb * price("logs_ingest_gb"),
    )
    stored = log_gb * assumed.archive_gzip_ratio  # one month kept (LOG_RETENTION_DAYS), billed compressed
    bill.add(
        "CloudWatch",
        f"logs kept {c.LOG_RETENTION_DAYS} days",
        stored,
        "GB-month",
        stored * price("logs_store_gb_month"),
    )
    series = (
        RETRIEVAL_METRICS
        + EVENTS_API_METRICS
        + PROCESSOR_METRICS
        + COMPACTOR_METRICS
        + API_METRICS_PER_METHOD * assumed.api_methods_with_traffic
    )
    fixed = (
        series * price("metric_month")
        + assumed.alarms * price("alarm_month")
        + assumed.dashboards * price("dashboard_month")
    )
    bill.add(
        "CloudWatch",
        f"{series} metric series, {assumed.alarms} alarms, {assumed.dashboards} dashboard",
        series,
        "metrics",
        fixed,
    )
    # API requests: the API stage's sampling rule decides, the functions behind it follow; the event
    # processor's batches, when it traces them, at Lambda's own fixed sampling
    sampled = sampled_per_s(
        (t.pages + t.event_calls) / SECONDS_PER_MONTH, config.xray_reservoir_per_s, config.xray_rate
    )
    processor = "event processor not traced"
    if config.processor_traced:
        batches_per_s = t.batches / SECONDS_PER_MONTH
        sampled += sampled_per_s(batches_per_s, LAMBDA_XRAY_RESERVOIR_PER_S, LAMBDA_XRAY_RATE)
        processor = f"batches {LAMBDA_XRAY_RESERVOIR_PER_S:g}/s + {LAMBDA_XRAY_RATE:.0%}"
    traces = sampled * SECONDS_PER_MONTH
    bill.add(
        "X-Ray",
        f"traces: API {config.xray_reservoir_per_s:g}/s + {config.xray_rate:.0%} of the rest; {processor}",
        traces,
        "traces",
        traces * price("xray_trace"),
    )


def sampled_per_s(rate: float, reservoir: float, fixed_rate: float) -> float:
    """Traces a second of a sampling rule: its reservoir, then its fixed rate of the rest."""
    return min(rate, reservoir) + fixed_rate * max(rate - reservoir, 0.0)
