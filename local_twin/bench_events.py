"""``python -m local_twin.bench_events``: the events path, measured.

1. Processor throughput against moto: the real event processor handler on Kinesis-shaped batches of
   100 events over 20 shoppers, moto in a separate process (so the process CPU time is the handler's:
   parsing, merging, boto3), DynamoDB calls counted by operation with botocore's event hooks.
2. Accounting through the twin's event source mapping: a stream with duplicates and garbage, drained
   by the poller into the handler; events in must equal processed + dead-lettered.
3. Freshness in the local twin: PutRecord of one view for a new shopper -> the first
   ``GET /users/{id}/recommendations`` whose items differ, with the poller running continuously at the
   twin's rate (0.2 s idle wait) and at AWS's standard-iterator rate (one poll per second per shard).

Prints a table, writes build/bench/events.json and PASS/MISS lines against the targets; never asserts.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from local_twin.api_client import call
from local_twin.functions import LambdaContext
from local_twin.poller import DEFAULT_IDLE_WAIT_SECONDS, KinesisPoller
from merchandiser.settings import EventProcessorSettings
from merchandiser.store import FeatureStore, create_counters_table
from merchandiser.stream import BatchOutcome

OUT = Path("build/bench/events.json")
REGION = "us-east-1"
SEED = 5
BATCHES, BATCH_SIZE, SHOPPERS = 30, 100, 20
FRESHNESS_TRIES = 20
FRESHNESS_TIMEOUT_S = 10.0
AWS_POLL_SECONDS = 1.0
TARGET_FRESHNESS_S = 1.0
TARGET_WRITES_PER_EVENT = 0.2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def moto_process() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return server, endpoint
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("moto server did not start")


def create_resources() -> dict[str, str]:
    dynamodb = boto3.client("dynamodb")
    for table in ("users", "sessions"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    create_counters_table(dynamodb, "counters")
    queue_url = boto3.client("sqs").create_queue(QueueName="events-dlq")["QueueUrl"]
    boto3.client("kinesis").create_stream(StreamName="events", ShardCount=1)
    return {
        "USERS_TABLE": "users",
        "SESSIONS_TABLE": "sessions",
        "COUNTERS_TABLE": "counters",
        "DEAD_LETTER_QUEUE_URL": queue_url,
    }


def kinesis_event(payloads: list[bytes], first: int) -> dict[str, Any]:
    return {
        "Records": [
            {
                "kinesis": {
                    "partitionKey": "k",
                    "sequenceNumber": f"{first + n:056d}",
                    "data": base64.b64encode(p).decode(),
                    "approximateArrivalTimestamp": time.time(),
                },
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000000000000:{first + n:056d}",
            }
            for n, p in enumerate(payloads)
        ]
    }


def view(event_id: str, user: str, item: str, when: datetime, event_type: str = "view") -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "user_id": user,
            "item_id": item,
            "event_type": event_type,
            "timestamp": when.isoformat(),
        }
    ).encode()


class Instrumented:
    """The real handler module, its DynamoDB calls counted by operation with botocore's event hooks and
    its batch outcomes kept; ``clock`` fixes the processor's time (tests). The integration tests use it too.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        from lambdas.event_processor import handler as module

        module.processor.cache_clear()
        self.module = module
        self.calls: Counter[str] = Counter()
        self.outcomes: list[BatchOutcome] = []
        core = module.processor(EventProcessorSettings.from_env())
        if clock is not None:
            core.clock = clock
        core.store._dynamodb.meta.client.meta.events.register("before-call.dynamodb", self._count)
        self.store: FeatureStore = core.store
        apply = core.apply

        def recorded(parsed: Any) -> BatchOutcome:
            self.outcomes.append(apply(parsed))
            return self.outcomes[-1]

        core.apply = recorded  # type: ignore[method-assign]

    @property
    def outcome(self) -> BatchOutcome:
        return self.outcomes[-1]

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.module.handler(event, LambdaContext("merchandiser-event_processor"))


def bench_processor() -> dict[str, Any]:
    rng = random.Random(SEED)
    server, endpoint = moto_process()
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    try:
        os.environ.update(create_resources())
        handler = Instrumented()
        now = datetime.now(UTC)
        batches = []
        for b in range(BATCHES):
            payloads = [
                view(
                    f"b{b}-e{n}",
                    f"shopper-{n % SHOPPERS}",
                    f"item-{rng.randrange(500)}",
                    now - timedelta(seconds=rng.randrange(5)),  # a batch spans seconds of traffic
                    "purchase" if rng.random() < 0.05 else "view",
                )
                for n in range(BATCH_SIZE)
            ]
            batches.append(kinesis_event(payloads, b * BATCH_SIZE))
        handler(kinesis_event([view("warm", "warm", "i", now)], 10**6))  # imports and clients, not measured
        handler.calls.clear()
        handler.outcomes.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            handler(batch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        events = BATCHES * BATCH_SIZE
        session_writes = handler.calls["PutItem"]
        # UpdateItem writes the stream figures (one small item per batch), priced apart from the counters; the
        # trending counts go in TransactWriteItems (99 counts and the dirty set each: one call per batch here)
        stats_writes = sum(o.stats_writes for o in handler.outcomes)
        counter_writes = handler.calls["TransactWriteItems"] + handler.calls["UpdateItem"] - stats_writes
        processor = {
            "events": events,
            "batches": BATCHES,
            "shoppers_per_batch": SHOPPERS,
            "events_per_second": events / wall,
            # moto answers slowly for items of a few KB (100+ ms per BatchGetItem); the handler's own
            # rate, bounded by its CPU, is what one Lambda would reach against DynamoDB's ~10 ms calls.
            "events_per_cpu_second": events / cpu,
            "cpu_ms_per_event": 1000 * cpu / events,
            "dynamodb_calls": dict(handler.calls),
            "dynamodb_calls_per_event": sum(handler.calls.values()) / events,
            "reads_per_event": (handler.calls["BatchGetItem"] + handler.calls["GetItem"]) / events,
            "session_writes_per_event": session_writes / events,
            "counter_writes_per_event": counter_writes / events,
            "stats_writes_per_event": stats_writes / events,
            "writes_per_event": (session_writes + counter_writes + stats_writes) / events,
            "processed": sum(o.processed for o in handler.outcomes),
        }
        processor["accounting"] = bench_accounting(rng, now)
        return processor
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # moto's server can outlive SIGTERM by a kept-alive connection
            server.kill()
            server.wait()


def bench_accounting(rng: random.Random, now: datetime) -> dict[str, Any]:
    """2,000 records on the stream (3% garbage, 5% repeats) through the twin's mapping into the handler."""
    kinesis, sqs = boto3.client("kinesis"), boto3.client("sqs")
    handler = Instrumented()
    records: list[bytes] = []
    distinct: list[bytes] = []
    for n in range(2000):
        roll = rng.random()
        if roll < 0.03:
            records.append(b'{"event_id": "broken"')
        elif roll < 0.08 and distinct:
            records.append(rng.choice(distinct))
        else:
            distinct.append(view(f"acc-{n}", f"acc-shopper-{n % 50}", f"item-{n % 97}", now))
            records.append(distinct[-1])
    for start in range(0, len(records), 500):
        kinesis.put_records(
            StreamName="events",
            Records=[{"Data": r, "PartitionKey": "k"} for r in records[start : start + 500]],
        )
    queue_url = os.environ["DEAD_LETTER_QUEUE_URL"]
    mapping = KinesisPoller(kinesis, sqs, "events", queue_url, invoke=handler)
    mapping.drain()
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    dead = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    garbage = sum(1 for r in records if r.startswith(b'{"event_id": "broken"'))
    processed = sum(o.processed for o in handler.outcomes)
    return {
        "records_in": len(records),
        "distinct_events_and_garbage_in": len(distinct) + garbage,
        "processed": processed,
        "duplicates_dropped": sum(o.duplicates for o in handler.outcomes),
        "dead_lettered": dead,
        "parked_by_mapping": mapping.stats.records_exhausted + mapping.stats.records_too_old,
        "balanced": len(distinct) + garbage == processed + dead,
    }


def bench_freshness() -> dict[str, Any]:
    from local_twin.twin import Twin
    from training.datasets.synthetic_shop import generate

    with tempfile.TemporaryDirectory(prefix="merchandiser-bench-") as work:
        workdir = Path(work)
        generate(workdir / "shop", n_users=300, n_items=150, n_days=40, seed=11)
        twin = Twin(workdir)
        try:
            twin.start()
            twin.load_data(workdir / "shop")
            twin.train_and_publish()
            api = twin.serve()
            assert twin.poller is not None
            kinesis, stream = twin.client("kinesis"), twin.state()["events_stream"]
            key = str(twin.api_key)
            popular = [i["item_id"] for i in get(f"{api}/items/popular?k=50", key)["items"]]
            rng = random.Random(SEED)
            results = {}
            for label, interval in (
                ("twin", DEFAULT_IDLE_WAIT_SECONDS),
                ("aws_standard_poll", AWS_POLL_SECONDS),
            ):
                twin.poller.idle_wait_seconds = interval
                samples = []
                for n in range(FRESHNESS_TRIES):
                    # A try that starts right after the previous page changed is in phase with the
                    # poller; a random pause puts each PutRecord at a random point of the poll cycle.
                    time.sleep(rng.uniform(0, interval))
                    samples.append(one_try(api, key, kinesis, stream, popular[n % len(popular)]))
                results[label] = {
                    "poll_interval_s": interval,
                    "tries": len(samples),
                    "median_s": statistics.median(samples),
                    "worst_s": max(samples),
                    "samples_s": [round(s, 4) for s in samples],
                }
            return results
        finally:
            twin.stop()


def get(url: str, api_key: str) -> dict[str, Any]:
    status, body, _ = call("GET", url, api_key=api_key)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}: {body}")
    return body


def one_try(api: str, api_key: str, kinesis: Any, stream: str, item_id: str) -> float:
    shopper = f"fresh-{uuid.uuid4().hex[:10]}"
    url = f"{api}/users/{shopper}/recommendations?k=10"
    before = [i["item_id"] for i in get(url, api_key)["items"]]
    started = time.perf_counter()
    kinesis.put_record(
        StreamName=stream,
        PartitionKey=shopper,
        Data=view(str(uuid.uuid4()), shopper, item_id, datetime.now(UTC)),
    )
    while (elapsed := time.perf_counter() - started) < FRESHNESS_TIMEOUT_S:
        if [i["item_id"] for i in get(url, api_key)["items"]] != before:
            return elapsed
        time.sleep(0.01)
    return float("inf")


def verdict(ok: bool, text: str) -> str:
    return f"{'PASS' if ok else 'MISS'}  {text}"


def main() -> int:
    processor = bench_processor()
    try:
        # The twin's functions print their metrics (EMF) to stdout; the bench prints its table instead.
        with contextlib.redirect_stdout(io.StringIO()):
            freshness = bench_freshness()
    except Exception as exc:  # a bench reports what it could not measure instead of stopping
        print(f"freshness not measured: the twin did not start or serve ({type(exc).__name__}: {exc})")
        freshness = {
            "twin": {
                "poll_interval_s": DEFAULT_IDLE_WAIT_SECONDS,
                "tries": 0,
                "median_s": float("inf"),
                "worst_s": float("inf"),
                "error": f"{type(exc).__name__}: {exc}"[:300],
            }
        }
    accounting = processor["accounting"]
    calls = processor["dynamodb_calls"]
    print(f"\nEvents bench (seed {SEED}; {BATCHES} batches x {BATCH_SIZE} events over {SHOPPERS} shoppers)")
    rows = [
        (
            "events/s through the processor (moto in another process)",
            f"{processor['events_per_second']:,.0f}",
        ),
        ("events per CPU second of the handler", f"{processor['events_per_cpu_second']:,.0f}"),
        ("CPU ms per event (handler process)", f"{processor['cpu_ms_per_event']:.3f}"),
        ("DynamoDB calls per event, all", f"{processor['dynamodb_calls_per_event']:.3f}"),
        ("  reads (BatchGetItem/GetItem) per event", f"{processor['reads_per_event']:.3f}"),
        ("  session writes (PutItem) per event", f"{processor['session_writes_per_event']:.3f}"),
        (
            "  trending counter writes (TransactWriteItems) per event",
            f"{processor['counter_writes_per_event']:.3f}",
        ),
        ("  writes per event", f"{processor['writes_per_event']:.3f}"),
        ("DynamoDB calls by operation", ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))),
        (
            "accounting: records in / distinct+garbage",
            f"{accounting['records_in']} / {accounting['distinct_events_and_garbage_in']}",
        ),
        (
            "accounting: processed + dead-lettered (+ dropped repeats)",
            f"{accounting['processed']} + "
            f"{accounting['dead_lettered']} (+ {accounting['duplicates_dropped']})",
        ),
    ]
    for label, result in freshness.items():
        rows.append(
            (
                f"freshness PutRecord -> changed page, poll {result['poll_interval_s']} s ({label}), "
                f"median / worst of {result['tries']}",
                f"{result['median_s'] * 1000:.0f} / {result['worst_s'] * 1000:.0f} ms",
            )
        )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"processor": processor, "freshness": freshness}, indent=2))
    print(f"\nwrote {OUT}")
    twin = freshness["twin"]
    print(
        verdict(
            twin["worst_s"] < TARGET_FRESHNESS_S,
            f"freshness in the twin under {TARGET_FRESHNESS_S:.0f} s: worst {twin['worst_s']:.3f} s, "
            f"median {twin['median_s']:.3f} s (poll {twin['poll_interval_s']} s)",
        )
    )
    print(
        verdict(
            processor["writes_per_event"] <= TARGET_WRITES_PER_EVENT,
            f"DynamoDB writes per event <= {TARGET_WRITES_PER_EVENT}: {processor['writes_per_event']:.3f} "
            f"(sessions {processor['session_writes_per_event']:.3f} + "
            f"counters {processor['counter_writes_per_event']:.3f})",
        )
    )
    print(
        verdict(
            accounting["balanced"] and accounting["parked_by_mapping"] == 0,
            f"events in = processed + dead-lettered: {accounting['distinct_events_and_garbage_in']} = "
            f"{accounting['processed']} + {accounting['dead_lettered']}",
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
