"""The arithmetic of the cost model: a load, the measured and assumed per-request figures, and the stack's
configuration in; the monthly bill's line items out, beside Amazon Personalize's for the same load.

Pure functions over small dataclasses, so each line item is tested on known inputs
(tests/unit/test_cost_model.py). ``local_twin.cost`` reads the bench files, prints and writes JSON.
Sizes of DynamoDB records come from the store's own record shapes and limits (``merchandiser.store``),
priced with DynamoDB's documented sizing rules, so a change to what a session holds changes the bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np

from local_twin.cost_prices import HOURS_PER_MONTH, SECONDS_PER_MONTH
from merchandiser.store import (
    BUCKET_TTL,
    SEEN_EVENT_IDS_KEPT,
    SESSION_EVENTS_KEPT,
    TRENDING_PARTITIONS,
    TRENDING_TOP_PER_HOUR,
    SessionEvent,
    count_key,
    summary_key,
    to_dynamo,
)
from stacks import constants as c

DAYS_PER_MONTH = HOURS_PER_MONTH / 24.0
MB = 1024.0 * 1024.0
GB = 1024.0**3
LAMBDA_MB_PER_VCPU = float(c.LAMBDA_MB_PER_VCPU)
KINESIS_ON_DEMAND_MIN_SHARDS = 4  # a new on-demand stream accepts 4 MB/s and 4,000 records/s
KINESIS_CONSUMERS = 2  # the event processor's mapping and Firehose both read every record
# Lambda's own X-Ray sampling (active tracing, no upstream decision): fixed, not configurable
LAMBDA_XRAY_RESERVOIR_PER_S = 1.0
LAMBDA_XRAY_RATE = 0.05
DYNAMODB_MAX_ITEM_BYTES = 400 * 1024
DYNAMODB_STORAGE_OVERHEAD_BYTES = 100
COUNTER_HOURS_KEPT = BUCKET_TTL.total_seconds() / 3600.0  # an hour's counts and summary, until their TTL
# The shopper profile the publish step writes (training/bundle.py HISTORY_ITEMS, training/fit.py RECENT_ITEMS;
# a unit test checks these against the training code, which is too heavy to import here).
PROFILE_HISTORY_ITEMS = 200
PROFILE_RECENT_ITEMS = 20
# Representative ids: the sample event tests/events/event_v1.json (user "u-1042", item "sku-88213", UUID).
USER_ID, ITEM_ID, EVENT_ID = "u-1042", "sku-88213", "0f8e2a3c-5b9d-4e1f-a7c6-2d4b8e9f1a3c"
EPOCH_TS = 1764403200.123456


@dataclass(frozen=True)
class Load:
    """What the shop does in a month. Traffic is flat (the monthly average every hour)."""

    rps: float
    events_per_request: float = 2.0  # the page view that shows recommendations + about one other event
    events_per_second_override: float | None = None
    catalog_items: int = 100_000
    requests_per_shopper_month: float = 10.0
    event_bytes: int = 350  # compact JSON of tests/events/event_v1.json is 330 bytes
    impression_bytes: int = 500  # one record per served page: ids of the page, model, variant, time
    events_per_api_call: float = 1.0  # a browser POSTs each event as it happens
    popularity_exponent: float = 0.9  # Zipf exponent of item popularity (training/datasets/synthetic_shop.py)
    training_cadence_days: float = 1.0  # stacks/constants.DEFAULT_TRAINING_SCHEDULE is rate(1 day)
    training_window_days: float = 90.0
    archive_months: float = 12.0  # months of archive held in S3 in the month priced
    overlay_items: int = 100  # catalogue upserts waiting for the next training (catalog_overlay)
    catalogue_writes_per_day: float = (
        500.0  # PUT /items calls (stock, price, new items): each moves the version
    )
    peak_to_average: float = 2.0  # sizes provisioned capacity (Kinesis shards, Lambda sandboxes)
    returning_shopper_share: float = 0.5  # of a month's shoppers, those also seen earlier in the window
    personalize_retrain_days: float = 7.0
    personalize_campaigns: int = 1
    personalize_min_tps: float = 1.0

    @property
    def events_per_second(self) -> float:
        if self.events_per_second_override is not None:
            return self.events_per_second_override
        return self.rps * self.events_per_request

    @property
    def shoppers(self) -> float:
        return max(1.0, self.rps * SECONDS_PER_MONTH / self.requests_per_shopper_month)

    @property
    def events_per_shopper_month(self) -> float:
        return self.events_per_second * SECONDS_PER_MONTH / self.shoppers

    @property
    def shoppers_in_window(self) -> float:
        """Distinct shoppers of the training window: each profile the publish step loads."""
        months = max(self.training_window_days / DAYS_PER_MONTH, 1.0)
        return self.shoppers * (1.0 + (months - 1.0) * (1.0 - self.returning_shopper_share))

    @property
    def profiles_changed_per_training(self) -> float:
        """Profiles whose content changes between two trainings when only the shopper's events change it:
        the shoppers with events since the last training (about a month's shoppers over the trainings in a
        month) + as many whose oldest events left the window as it slid by one cadence (at steady state as
        many leave as arrive): 2 x shoppers / runs a month, at most every shopper of the window."""
        runs = DAYS_PER_MONTH / self.training_cadence_days
        return min(self.shoppers_in_window, 2.0 * self.shoppers / runs)

    @property
    def interactions_in_window(self) -> float:
        return self.events_per_second * 86400.0 * self.training_window_days


@dataclass(frozen=True)
class Measured:
    """Per-request figures measured by the benches; the defaults are the README's figures of 2026-11-22."""

    handler_ms: float = 14.50  # serving bench: whole handler minus the moto store, p99
    cold_start_s: float = 1.06  # serving bench: imports + loading every artifact
    restore_hooks_s: float = 0.00002  # serving bench: SnapStart's after_restore hook (17 us, 2026-11-30)
    bench_catalog_items: int = 100_000
    processor_cpu_ms_per_event: float = 1.98  # events bench: handler CPU per event
    reads_per_batch: float = 1.0  # events bench: BatchGetItem calls per batch
    writes_per_shopper_batch: float = 1.0  # events bench: session PutItem per shopper in a batch
    # EMF blob (986 B) + the "served" line (955 B), mean of 250 pages of the serving bench's model, measured
    # 2026-11-30 with the real handler; + 26 B of CloudWatch metadata per log event
    log_bytes_per_page: float = 1_940.0 + 2 * 26
    response_bytes_per_page: float = 3_148.0  # JSON body of a 20-item page, same measurement
    # Spark's CPU time per single-machine second on the same data, threads and flags (Spark bench, 10M
    # interactions: 2,980 s against 784 s on 2026-11-30, local mode on this machine)
    spark_overhead: float = 3.8
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Assumed:
    """Figures no bench here can measure (no AWS account): stated, not measured."""

    dynamodb_call_ms: float = 6.0  # one in-region DynamoDB call, wall time
    kinesis_put_ms: float = 10.0  # the impression PutRecord of a served page (DESIGN.md; not built yet)
    events_api_ms: float = 15.0  # POST /events: validate + PutRecords, at 512 MB
    sandbox_lifetime_hours: float = 2.0  # a warm Lambda sandbox is recycled about this often
    # SnapStart's Billed Restore Duration is loading the runtime + the after-restore hooks: the runtime's part
    # is not measurable here (the bench has no snapshot to restore)
    snapstart_runtime_load_ms: float = 150.0
    # CloudWatch Logs bills each event's bytes + 26 bytes of metadata
    platform_log_bytes: float = 450.0  # START (~80 B), END (~60 B) and REPORT (~230 B) lines + 3 x 26
    access_log_bytes: float = 330.0  # ~300 B JSON of the stage's standard access-log fields + 26
    events_api_log_bytes: float = 600.0  # EMF blob + log lines of POST /events
    processor_log_bytes: float = 1_200.0  # EMF blob (9 metrics) + "batch processed" line per batch
    archive_gzip_ratio: float = 0.15  # gzip'd JSON lines / raw
    response_header_bytes: float = 300.0  # status line and headers of an API response
    # gzip'd / raw JSON of a 20-item page: 0.28 measured on 200 pages of the synthetic shop's titles and
    # reasons (3.6 KB -> 1.0 KB); a real catalogue's titles repeat less. Every page is taken to be asked for
    # with Accept-Encoding: gzip (browsers send it; a storefront's server-side client may not).
    response_gzip_ratio: float = 0.30
    events_response_bytes: float = 120.0  # POST /events: 202 with the accepted event ids
    model_bytes_per_item: float = 800.0  # layers: 77 MiB of model + index at 100,000 items
    model_versions_kept: int = 30  # noncurrent versions expire after 30 days, one model a day
    training_s_per_interaction: float = 967.0 / 10_662_083  # README: 10.7M interactions in 967 s
    training_bytes_per_interaction: float = 7.23 * GB / 10_662_083  # README: peak 7.23 GiB at 10.7M
    training_overhead_hours: float = 0.05  # SageMaker start-up, download, upload (billed)
    training_instance_gib: float = 16.0  # ml.m5.xlarge
    emr_gb_per_vcpu: float = 4.0  # EMR Serverless default worker: 4 vCPU, 16 GB
    api_methods_with_traffic: int = 2  # detailed API metrics: GET recommendations, POST events
    alarms: int = 3
    dashboards: int = 1
    profiles_per_write_call: int = 25  # publish: batch_writer's BatchWriteItem of 25
    # publish: one Scan page of the profiles' digests (1 MB of items read), each of the parallel Scan's
    # segments (merchandiser.store.DIGEST_SCAN_SEGMENTS) reading its pages one after the other
    scan_ms_per_page: float = 100.0
    # publish: a stored digest in the function's memory (merchandiser.store.StoredDigests: one sorted numpy
    # array of 16-byte digests)
    digest_bytes_in_memory: float = 16.0
    # publish: reading one user_features line and its digest (json.loads + merchandiser.store.profile_digest),
    # CPU per byte of the profile: measured by hand 2026-12-01 on this machine, 31 us at 1.1 KB, 125 us at
    # 4.7 KB; every profile of the window is digested whether or not it is written
    digest_ns_per_profile_byte: float = 27.0
    # the trending compactor: CPU per count item a Query returns (boto3 parsing it, the top-N), at 512 MB
    compactor_us_per_item: float = 10.0
    compactor_log_bytes: float = 900.0  # EMF blob (3 metrics) + its "compacted" line per run


@dataclass(frozen=True)
class StackConfig:
    """How the stack is built (today's values from stacks/), and the levers the report tries."""

    serving_memory_mb: int = c.SERVING_MEMORY_MB
    default_memory_mb: int = c.DEFAULT_MEMORY_MB
    arm64: bool = False  # stacks/functions.py: lambda_.Architecture.X86_64
    # stacks/streaming_stack.py events_stream: StreamMode.PROVISIONED by default (constants
    # DEFAULT_STREAM_MODE, context merchandiser:streamMode), shards from constants.stream_shards for the
    # load's peak (the shop sets merchandiser:peakStreamRecordsPerSecond; the default, 500 records/s, is
    # the 1 shard every load here needs)
    kinesis_on_demand: bool = c.DEFAULT_STREAM_MODE == c.STREAM_MODE_ON_DEMAND
    # stacks/serving_stack.py MerchandiserApi._sampling_rule: the API stage's X-Ray rule (constants
    # XRAY_SAMPLING_RESERVOIR, XRAY_SAMPLING_RATE); the functions behind it follow its decision
    xray_reservoir_per_s: float = float(c.XRAY_SAMPLING_RESERVOIR)
    xray_rate: float = c.XRAY_SAMPLING_RATE
    # stacks/functions.py tracing_mode: the event processor passes tracing through (constants
    # PASS_THROUGH_TRACING), so Lambda's fixed 1/s + 5% never traces its batches
    processor_traced: bool = "event_processor" not in c.PASS_THROUGH_TRACING
    # merchandiser.store.counters: a batch ADDs one count item per distinct (hour, item), spread over the
    # hour's write partitions, and marks its hours dirty (one more ADD); the compactor, run every
    # constants.COMPACTOR_INTERVAL_MINUTES, Queries each dirty hour and puts its summary of the largest counts
    trending_partitions: int = TRENDING_PARTITIONS
    trending_top_per_hour: int = TRENDING_TOP_PER_HOUR
    compactor_runs_per_hour: float = 60.0 / c.COMPACTOR_INTERVAL_MINUTES
    # merchandiser.publishing writes the profiles whose digest changed; training/bundle.py writes each
    # history decayed to its shopper's latest event (serving decays it to the model's end), so a profile
    # changes only with its shopper's events (Load.profiles_changed_per_training). True: the histories
    # decayed to the training's end, as before, when every profile's weights moved at each training.
    history_decayed_at_training: bool = False
    publish_memory_mb: int = c.MEMORY_MB["publish"]  # stacks/constants.py: it holds the stored digests
    # stacks/serving_stack.py MerchandiserApi: the RestApi's min_compression_size (API_MIN_COMPRESSION_BYTES)
    compressed_responses: bool = True
    min_compression_bytes: int = c.API_MIN_COMPRESSION_BYTES
    batch_size: int = c.ESM_BATCH_SIZE
    # stacks/streaming_stack.py: the mapping's ParallelizationFactor, constants.esm_parallelization_factor of
    # the load's peak over its provisioned shards (1 on demand)
    parallelization_by_peak: bool = True
    # SnapStart versions cached at once per serving function. SnapStart bills each published version's
    # snapshot while the version is active (at least 3 hours); Lambda deletes a snapshot not invoked for 14
    # days. Unpruned, a daily training would keep ~15 snapshots per function (the last 14 days' versions).
    # Each canary start prunes all but the live version (the rollback target) and the new one
    # (merchandiser.publishing.canary.ModelCanary.prune): 2, each cached for two trainings.
    snapstart_versions_kept: int = 2
    serving_functions: int = len(c.SERVING_FUNCTIONS)  # each publishes a version per promotion
    # stacks/serving_stack.py: the serving functions' start mode, constants.serving_start_mode of the
    # catalogue and this setting (context merchandiser:snapStart; auto: SnapStart where the on-demand init's
    # estimate exceeds constants.SNAPSTART_ABOVE_INIT_S, from ~172k items up to ~1.08M)
    snap_start: str = c.DEFAULT_SNAPSTART
    # where the serving functions start on demand and would miss the cold-start budget (past ~1.08M items)
    # each live alias keeps this many initialised
    provisioned_concurrency: int = c.SERVING_PROVISIONED_CONCURRENCY


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: float
    unit: str
    usd: float


@dataclass
class Bill:
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, service: str, item: str, quantity: float, unit: str, usd: float) -> None:
        self.lines.append(Line(service, item, quantity, unit, usd))

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)


# -- DynamoDB sizing ---------------------------------------------------------------------------------------
def _number_bytes(value: Any) -> int:
    digits = Decimal(str(value)).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def value_bytes(value: Any) -> int:
    """Size of one attribute value by DynamoDB's documented rules (names are counted by the caller)."""
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, int | float | Decimal):
        return _number_bytes(value)
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + value_bytes(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(value_bytes(v) + 1 for v in value)
    if isinstance(value, set | frozenset):
        return sum(value_bytes(v) for v in value)
    raise TypeError(f"no DynamoDB size rule for {type(value).__name__}")


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


# merchandiser.store.items: the catalogue version item ({"item_id": ..., "version": n}), read per page
VERSION_ITEM_BYTES = 40


def catalogue_writes(load: Load) -> float:
    """Catalogue writes in a month: after each, every sandbox reads the overlay again."""
    return load.catalogue_writes_per_day * SECONDS_PER_MONTH / 86_400


def read_units(size: int, consistent: bool) -> float:
    return math.ceil(max(size, 1) / 4096) * (1.0 if consistent else 0.5)


def write_units(size: int) -> int:
    return math.ceil(max(size, 1) / 1024)


def session_item_bytes(events: int) -> int:
    """The sessions-table item ``FeatureStore.write_session`` writes after ``events`` events."""
    kept = min(events, SESSION_EVENTS_KEPT)
    event = SessionEvent(event_id=EVENT_ID, item_id=ITEM_ID, event_type="view", weight=1.0, ts=EPOCH_TS)
    item = {
        "user_id": USER_ID,
        "events": to_dynamo([event.__dict__] * kept),
        "seen": [EVENT_ID] * min(events, SEEN_EVENT_IDS_KEPT),
        "version": events,
        "expires_at": int(EPOCH_TS),
        "updated_at": to_dynamo(EPOCH_TS),
        "purchased": {ITEM_ID},
    }
    return item_bytes(item)


def profile_item_bytes(items: int) -> int:
    """The users-table item the publish step writes (training/bundle.py user features)."""
    history = {f"{ITEM_ID[:-5]}{n:05d}": 1.520332 for n in range(min(items, PROFILE_HISTORY_ITEMS))}
    item = {
        "user_id": USER_ID,
        "history": to_dynamo(history),
        "history_at": to_dynamo(1772457961.123),  # the shopper's latest event, the history decayed to it
        "half_life_days": to_dynamo(30.0),
        "purchased": list(history)[: max(1, items // 10)],
        "recent": list(history)[:PROFILE_RECENT_ITEMS],
        "attributes": {"age_band": "35-44", "country": "GB", "device": "mobile"},
        "category_seen": to_dynamo({"electronics": 1772249794.0, "kitchen": 1772457961.0}),
        "model_version": "20261130-020000",
        "digest": "0" * 32,  # merchandiser.store.profile_digest: 16 bytes, hex
    }
    return item_bytes(item)


def count_item_bytes() -> int:
    """One (hour, item) trending count (``merchandiser.store.counters``)."""
    return item_bytes(
        {**count_key("2026113012", ITEM_ID), "count": to_dynamo(12.5), "expires_at": int(EPOCH_TS)}
    )


def summary_item_bytes(items: float) -> int:
    """An hour's trending summary holding ``items`` counts."""
    empty = item_bytes({**summary_key("2026113012"), "top": {}, "expires_at": int(EPOCH_TS)})
    return empty + round(items * (len(ITEM_ID) + _number_bytes(12.5) + 1))


@cache
def _log_unseen(catalog_items: int, exponent: float) -> np.ndarray:
    """log(1 - p_i) of each item's Zipf(``exponent``) popularity, most popular first."""
    weights = np.arange(1, catalog_items + 1, dtype=np.float64) ** -exponent
    result: np.ndarray = np.log1p(-weights / weights.sum())
    return result


def expected_distinct(draws: float, catalog_items: int, exponent: float) -> float:
    """Expected distinct items among ``draws`` events drawn from a Zipf(``exponent``) popularity:
    sum over items of 1 - (1 - p_i)^draws."""
    if draws <= 0:
        return 0.0
    return float(np.sum(-np.expm1(draws * _log_unseen(catalog_items, exponent))))


# -- Kinesis -----------------------------------------------------------------------------------------------
def kinesis_shards_needed(records_per_s: float, bytes_per_s: float) -> int:
    """Provisioned shards for a write rate: 1 MB/s and 1,000 records/s per shard, at least one (the stack's
    own formula, ``stacks.constants.stream_shards``)."""
    return c.stream_shards(records_per_s, bytes_per_s)


def batches_per_second(records_per_s: float, shards: int, batch_size: int) -> float:
    """Invocations of the event processor: each shard is polled about once a second (no batching window);
    a poll finding r records (Poisson) invokes once if r > 0, and full batches are taken back to back."""
    per_shard = records_per_s / shards
    return shards * max(-math.expm1(-per_shard), per_shard / batch_size)


def event_batch_share(records_per_s: float, events_per_s: float, shards: int, batch_size: int) -> float:
    """Share of the processor's batches holding at least one event (the others hold impressions only and
    touch no session or counter)."""
    if records_per_s <= 0 or events_per_s <= 0:
        return 0.0
    r, e = records_per_s / shards, events_per_s / shards
    if r / batch_size >= -math.expm1(-r):  # full batches back to back
        return 1.0 - (1.0 - e / r) ** batch_size
    return -math.expm1(-e) / -math.expm1(-r)  # one poll a second: some polls find impressions only


def lambda_gb_s(invocations: float, duration_ms: float, memory_mb: int) -> float:
    """GB-seconds: each invocation billed in whole milliseconds."""
    return invocations * math.ceil(duration_ms) / 1000.0 * memory_mb / 1024.0


def cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)


@dataclass(frozen=True)
class Traffic:
    """Derived rates of one load on the stack."""

    pages: float
    events: float
    event_calls: float
    records_per_s: float
    bytes_per_s: float
    shards: int
    batches: float
    parallelization: int  # concurrent batches per shard
    event_batches: float  # batches holding at least one event
    events_per_event_batch: float
    records_per_batch: float


def traffic(load: Load, config: StackConfig) -> Traffic:
    records_per_s = load.events_per_second + load.rps  # every served page is one impression record
    bytes_per_s = load.events_per_second * load.event_bytes + load.rps * load.impression_bytes
    peak = kinesis_shards_needed(records_per_s * load.peak_to_average, bytes_per_s * load.peak_to_average)
    # on-demand keeps room for twice the 30-day peak, from 4 shards' worth
    shards = max(KINESIS_ON_DEMAND_MIN_SHARDS, 2 * peak) if config.kinesis_on_demand else peak
    per_s = batches_per_second(records_per_s, shards, config.batch_size)
    provisioned_factor = not config.kinesis_on_demand and config.parallelization_by_peak
    parallelization = (
        c.esm_parallelization_factor(records_per_s * load.peak_to_average, shards)
        if provisioned_factor
        else 1
    )
    with_events = per_s * event_batch_share(records_per_s, load.events_per_second, shards, config.batch_size)
    return Traffic(
        pages=load.rps * SECONDS_PER_MONTH,
        events=load.events_per_second * SECONDS_PER_MONTH,
        event_calls=load.events_per_second * SECONDS_PER_MONTH / load.events_per_api_call,
        records_per_s=records_per_s,
        bytes_per_s=bytes_per_s,
        shards=shards,
        batches=per_s * SECONDS_PER_MONTH,
        parallelization=parallelization,
        event_batches=with_events * SECONDS_PER_MONTH,
        events_per_event_batch=load.events_per_second / with_events if with_events else 0.0,
        records_per_batch=records_per_s / per_s if per_s else 0.0,
    )


def mean_session_units(events_per_shopper: float) -> tuple[float, float, float, float]:
    """Over a shopper's month (the session grows event by event up to the store's limits): mean item bytes,
    mean eventually consistent read units, strongly consistent read units, write units."""
    n = max(1, round(events_per_shopper))
    sizes = [session_item_bytes(k) for k in range(1, min(n, 250) + 1)]
    sizes += [sizes[-1]] * (n - len(sizes))  # past the limits the item no longer grows
    count = float(len(sizes))
    return (
        sum(sizes) / count,
        sum(read_units(s, consistent=False) for s in sizes) / count,
        sum(read_units(s, consistent=True) for s in sizes) / count,
        sum(write_units(s) for s in sizes) / count,
    )


@dataclass(frozen=True)
class Compaction:
    """The trending compactor's month: its runs, what each reads and writes, the counters' storage."""

    runs: float
    mean_ms: float  # one run's duration, empty runs included
    query_rru: float
    summary_wru: float
    dirty_set_units: float  # each run's GetItem (strongly consistent) and, with work, its clearing UpdateItem
    items_per_hour: float  # count items an hour ends with
    summary_bytes: int  # the largest summary


def compaction(load: Load, assumed: Assumed, config: StackConfig) -> Compaction:
    """Each run finds the current hour dirty when an event came in the last interval, and compacts it: a
    Query of its write partitions (every count so far, strongly consistent: ``Counters.hour_counts``) and
    a PutItem of its summary. Each hour is compacted once more after it ends (its last seconds' events are
    processed in the next hour). Runs through an hour see its counts grow: the mean over the hour's runs is
    priced."""
    per_run = load.events_per_second * 3600.0 / config.compactor_runs_per_hour
    busy = -math.expm1(-per_run)  # the share of runs with at least one event since the last
    partitions, item = config.trending_partitions, count_item_bytes()

    def compacted(events: float) -> tuple[float, float, float, float]:
        """Query RRU, summary WRU, DynamoDB calls and items read for an hour holding ``events`` events."""
        items = expected_distinct(events, load.catalog_items, load.popularity_exponent)
        per_partition = math.ceil(items / partitions * item)
        pages = max(1, math.ceil(per_partition / MB))  # a Query page holds at most 1 MB
        summary = summary_item_bytes(min(items, config.trending_top_per_hour))
        rru = partitions * read_units(per_partition, consistent=True)
        return rru, float(write_units(summary)), partitions * pages + 1.0, items

    runs_per_hour = round(config.compactor_runs_per_hour)
    during = [compacted(per_run * (j + 1)) for j in range(runs_per_hour)]
    after = compacted(per_run * runs_per_hour)  # the hour's closing compaction
    hours = [tuple(busy * x for x in run) for run in during] + [after]

    def per_hour(index: int) -> float:
        return sum(run[index] for run in hours)

    calls = runs_per_hour * (1.0 + busy) + per_hour(2)  # GetItem each run, UpdateItem with work, the hours
    cpu_ms = per_hour(3) * assumed.compactor_us_per_item / 1000.0
    mean_ms = (calls * assumed.dynamodb_call_ms + cpu_ms) / runs_per_hour
    return Compaction(
        runs=config.compactor_runs_per_hour * HOURS_PER_MONTH,
        mean_ms=mean_ms,
        query_rru=per_hour(0) * HOURS_PER_MONTH,
        summary_wru=per_hour(1) * HOURS_PER_MONTH,
        dirty_set_units=runs_per_hour * (1.0 + busy) * HOURS_PER_MONTH,
        items_per_hour=after[3],
        summary_bytes=summary_item_bytes(min(after[3], config.trending_top_per_hour)),
    )


def distinct_in_batch(load: Load, t: Traffic) -> float:
    return expected_distinct(t.events_per_event_batch, load.catalog_items, load.popularity_exponent)
