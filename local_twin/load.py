"""``make load`` (``python -m local_twin.load``): shoppers against the twin while faults are injected.

The twin runs in a process of its own (``local_twin.load_twin``: locust patches this interpreter for
gevent at import, the twin keeps its threads). Faults, all on for the whole run:

- at moto's process (``moto_faults``): a share of DynamoDB item calls throttled
  (ProvisionedThroughputExceededException / ThrottlingException) and a share of the records of every
  Kinesis PutRecords refused (PutRecord refused whole);
- a slow model load: the serving functions wait ``--model-load-delay`` seconds before each model load
  (``TWIN_MODEL_LOAD_DELAY_SECONDS``, a twin-only wrapper), and serving reloads its model halfway
  through the run, as new containers would after a deploy.

Locust runs as a library: ``--clients`` shoppers (FastHttpUser, headless, seeded), each choosing its
next request by the mix in ``MIX`` for a real shopper and item of the shop; a misbehaving producer puts
a record that is not JSON straight on the stream every ``GARBAGE_EVERY_S`` seconds. After the run the
twin settles (impressions flushed, stream drained) and the figures are printed and written to
``build/load/load.json``: requests, failures, p50/p99, responses by status, degraded pages, the faults
injected, and the events' balance: sent (accepted by the API, including re-sent ones, plus the
garbage) = processed + duplicates + dead-lettered (+ parked by the mapping after its retries).
Nothing is asserted here; ``tests/e2e/test_load.py`` checks a short run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import locust  # patches the interpreter for gevent (sockets, ssl) before boto3 or urllib open one
import pandas as pd
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

from local_twin.moto_process import faults

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "build" / "load"
SEED = 13
# The request mix: share of a shopper's requests per kind (the rest of a page view's calls are events).
MIX = {"recommendations": 45, "similar": 15, "popular": 10, "rank": 5, "events": 25}
EVENT_TYPES = {"view": 70, "click": 20, "add_to_cart": 7, "purchase": 3}  # share of a posted batch's events
RESEND_SHARE = 0.05  # of event posts: the last accepted batch again, same event ids (a browser retry)
GARBAGE_EVERY_S = 1.0
THINK_S = (0.05, 0.25)  # a shopper's pause between requests
SETTLE_TIMEOUT_S = 120.0
DEFAULT_FAULTS = {"dynamodb_throttle_share": 0.1, "kinesis_put_failure_share": 0.1}


@dataclass
class Tally:
    """What the shoppers saw and sent (greenlets share it: gevent switches only at I/O)."""

    statuses: Counter[int] = field(default_factory=Counter)
    degraded: Counter[str] = field(default_factory=Counter)  # degraded pages by reason
    pages: int = 0
    events_accepted: int = 0  # events the API answered 202 for, each one record on the stream
    events_resent: int = 0  # of those, re-sent with an event id already accepted
    garbage_sent: int = 0  # records that are not JSON, put straight on the stream


@dataclass(frozen=True)
class Shop:
    users: list[str]
    items: list[str]


def shop_of(data_dir: Path) -> Shop:
    users = pd.read_csv(data_dir / "users.csv", usecols=["user_id"], dtype=str)["user_id"].tolist()
    items = pd.read_csv(data_dir / "items.csv", usecols=["item_id"], dtype=str)["item_id"].tolist()
    return Shop(sorted(users), sorted(items))


def make_shopper(api_url: str, api_key: str, shop: Shop, tally: Tally, seed: int) -> type[FastHttpUser]:
    numbers = iter(range(1_000_000))

    class Shopper(FastHttpUser):
        host = api_url.rstrip("/")
        default_headers = {"x-api-key": api_key}
        network_timeout = connection_timeout = 30.0

        def wait_time(self) -> float:
            return self.rng.uniform(*THINK_S)

        def on_start(self) -> None:
            self.rng = random.Random(seed * 1000 + next(numbers))
            self.last_batch: list[dict[str, Any]] = []

        @locust.task
        def browse(self) -> None:
            kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
            user, item = self.rng.choice(shop.users), self.rng.choice(shop.items)
            if kind == "recommendations":
                self.page(f"/users/{user}/recommendations?k=20", "/users/[id]/recommendations")
            elif kind == "similar":
                self.page(f"/items/{item}/similar?k=10", "/items/[id]/similar")
            elif kind == "popular":
                self.page("/items/popular?k=20", "/items/popular")
            elif kind == "rank":
                ids = self.rng.sample(shop.items, min(10, len(shop.items)))
                self.send("POST", f"/users/{user}/rank", "/users/[id]/rank", {"item_ids": ids})
            else:
                self.post_events(user)

        def page(self, path: str, name: str) -> None:
            answer = self.send("GET", path, name)
            if answer is not None:
                tally.pages += 1
                for reason in answer.get("degraded_reasons", []) if answer.get("degraded") else []:
                    tally.degraded[reason] += 1

        def post_events(self, user: str) -> None:
            resend = bool(self.last_batch) and self.rng.random() < RESEND_SHARE
            if resend:
                batch = self.last_batch
            else:
                now = datetime.now(UTC).isoformat()
                batch = [
                    {
                        "event_id": f"load-{uuid.UUID(int=self.rng.getrandbits(128))}",
                        "user_id": user,
                        "item_id": self.rng.choice(shop.items),
                        "event_type": self.rng.choices(list(EVENT_TYPES), list(EVENT_TYPES.values()))[0],
                        "timestamp": now,
                    }
                    for _ in range(self.rng.randint(1, 5))
                ]  # fmt: skip
            if self.send("POST", "/events", "/events", {"events": batch}) is not None:
                tally.events_accepted += len(batch)
                tally.events_resent += len(batch) if resend else 0
                self.last_batch = batch

        def send(self, method: str, path: str, name: str, body: Any = None) -> dict[str, Any] | None:
            """The JSON answer of a 2xx, else None; every status is tallied (0: no answer at all)."""
            with self.client.request(method, path, name=name, json=body, catch_response=True) as response:
                status = int(response.status_code or 0)
                tally.statuses[status] += 1
                if 200 <= status < 300:
                    return dict(response.json())
                response.failure(f"{status}: {(response.text or '')[:200]}")
                return None

    return Shopper


def misbehaving_producer(endpoint: str, stream: str, tally: Tally, stop: gevent.event.Event) -> None:
    """Puts a record that no retry can fix (not JSON) straight on the stream, now and then."""
    import boto3  # after locust's patching (boto3 opens sockets)

    kinesis = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",  # moto's: the twin takes any
        aws_secret_access_key="testing",
    )
    number = 0
    while not stop.wait(GARBAGE_EVERY_S):
        number += 1
        try:  # botocore retries a refused PutRecord (throttling); a put it gave up on is not counted
            kinesis.put_record(StreamName=stream, Data=b"{not json %d" % number, PartitionKey=f"bad-{number}")
            tally.garbage_sent += 1
        except Exception as error:  # counted out, said, and the run goes on
            print(f"garbage record {number} not put: {error}", file=sys.stderr)


class TwinProcess:
    """``local_twin.load_twin`` in its own process, one JSON command and answer per line."""

    def __init__(self, data: Path, work: Path, workers: int, model_load_delay: float, log: Path):
        self._log = log.open("w")
        environment = {**os.environ, "TWIN_MODEL_LOAD_DELAY_SECONDS": str(model_load_delay)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_twin.load_twin", "--data", str(data), "--work", str(work),
             "--workers", str(workers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=environment, cwd=REPO,
        )  # fmt: skip
        self.state: dict[str, Any] = self._read()["state"]

    def do(self, action: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"do": action}).encode() + b"\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"the load's twin could not {action}: {answer['error']}")
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the twin stops when its commands end
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"the load's twin ended (code {code}); see {self._log.name}")
        return dict(json.loads(line))


def run(args: argparse.Namespace) -> dict[str, Any]:
    random.seed(args.seed)
    data = args.data or default_shop(args.out / "shop")
    shop = shop_of(data)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    twin = TwinProcess(data, Path(tempfile.mkdtemp(prefix="load-twin-")), args.workers,
                       args.model_load_delay, args.out / "twin.log")  # fmt: skip
    try:
        print(f"twin up in {time.perf_counter() - started:.0f} s at {twin.state['api_url']}", flush=True)
        endpoint = twin.state["endpoint_url"]
        settings = {**DEFAULT_FAULTS, **(args.faults or {}), "seed": args.seed}
        faults(endpoint, settings)
        tally = Tally()
        shopper = make_shopper(twin.state["api_url"], twin.state["api_key"], shop, tally, args.seed)
        # stop_timeout: at the end each shopper finishes the request it is in (none is cut off mid-answer)
        environment = Environment(user_classes=[shopper], stop_timeout=30)
        runner = environment.create_local_runner()
        stop = gevent.event.Event()
        producer = gevent.spawn(misbehaving_producer, endpoint, twin.state["events_stream"], tally, stop)
        reload: dict[str, Any] = {}
        reloader = gevent.spawn_later(args.seconds / 2, lambda: reload.update(twin.do("reload")))
        runner.start(args.clients, spawn_rate=args.clients)
        gevent.sleep(args.seconds)
        runner.stop()
        stop.set()
        gevent.joinall([producer, reloader])
        injected = faults(endpoint, {})  # off, so that settling is not throttled; answers the counts
        twin.do("settle")
        counts = twin.do("counts")
        return report(args, settings, tally, environment, injected["counts"], reload, counts)
    finally:
        twin.stop()


def report(
    args: argparse.Namespace,
    settings: dict[str, Any],
    tally: Tally,
    environment: Environment,
    injected: dict[str, int],
    reload: dict[str, Any],
    counts: dict[str, Any],
) -> dict[str, Any]:
    total = environment.stats.total
    events, dead_letter_queue, mapping = counts["events"], counts["dead_letter_queue"], counts["mapping"]
    sent = tally.events_accepted + tally.garbage_sent
    parked = mapping["exhausted_records"] + mapping["too_old_records"]
    accounted = events["processed"] + events["duplicates"] + events["dead_lettered"] + parked
    return {
        "seconds": args.seconds,
        "clients": args.clients,
        "mix": MIX,
        "resend_share": RESEND_SHARE,
        "faults": {**settings, "model_load_delay_s": args.model_load_delay, **injected},
        "model_reload_s": reload.get("reload_seconds"),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "requests_per_s": total.num_requests / args.seconds,
        "statuses": {str(status): n for status, n in sorted(tally.statuses.items())},
        "errors": [
            f"{error.method} {error.name}: {error.error} (x{error.occurrences})"
            for error in environment.stats.errors.values()
        ],
        "responses_5xx": sum(n for status, n in tally.statuses.items() if status >= 500),
        "pages": tally.pages,
        "degraded_pages_by_reason": dict(tally.degraded),
        "events": {
            "sent": sent,
            "accepted_by_api": tally.events_accepted,
            "resent": tally.events_resent,
            "garbage": tally.garbage_sent,
            "processed": events["processed"],
            "duplicates": events["duplicates"],
            "dead_lettered": events["dead_lettered"],
            "parked_by_mapping": parked,
            "dead_letter_queue_bad_records": dead_letter_queue["bad_records"],
            "redelivered_after_retry": events["redelivered"],
            "balanced": sent == accounted,
        },
    }


def default_shop(directory: Path) -> Path:
    """A small synthetic shop (fast to train), generated once and reused."""
    if not (directory / "interactions.csv").is_file():
        from training.datasets.synthetic_shop import generate

        generate(directory, n_users=1000, n_items=400, n_days=60, seed=SEED)
    return directory


def print_report(result: dict[str, Any]) -> None:
    events = result["events"]
    mix = ", ".join(f"{kind} {share}%" for kind, share in result["mix"].items())
    print(f"load: {result['clients']} shoppers for {result['seconds']:.0f} s; mix: {mix} "
          f"({result['resend_share']:.0%} of event posts re-sent); "
          f"a garbage record every {GARBAGE_EVERY_S:.0f} s")  # fmt: skip
    print(f"faults: {json.dumps(result['faults'])}; model reload took {result['model_reload_s']} s")
    print(f"requests {result['requests']}  failures {result['failures']}  p50 {result['p50_ms']:.0f} ms  "
          f"p99 {result['p99_ms']:.0f} ms  ({result['requests_per_s']:.1f} req/s)")  # fmt: skip
    print(f"responses by status {result['statuses']}: 5xx {result['responses_5xx']}; "
          f"{result['pages']} pages, degraded by reason {result['degraded_pages_by_reason']}")  # fmt: skip
    for error in result["errors"]:
        print(f"  failed: {error}")
    print(f"events: sent {events['sent']} (accepted {events['accepted_by_api']}, of them re-sent "
          f"{events['resent']}; garbage {events['garbage']}) = processed {events['processed']} + duplicates "
          f"{events['duplicates']} + dead-lettered {events['dead_lettered']} "
          f"+ parked {events['parked_by_mapping']}"
          f": {'balanced' if events['balanced'] else 'NOT BALANCED'} (dead-letter queue holds "
          f"{events['dead_letter_queue_bad_records']} bad records; {events['redelivered_after_retry']} "
          "records delivered again after a retry)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_twin.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("LOAD_SECONDS", 60)))
    parser.add_argument("--clients", type=int, default=8, help="concurrent shoppers")
    parser.add_argument("--data", type=Path, help="a shop to serve (default: a small synthetic one)")
    parser.add_argument("--workers", type=int, default=2, help="the twin's front worker processes")
    parser.add_argument("--model-load-delay", type=float, default=3.0, help="seconds added to a model load")
    parser.add_argument(
        "--faults",
        type=json.loads,
        help='moto_faults settings as JSON, e.g. {"dynamodb_throttle_share": 0.3}',
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = run(args)
    print_report(result)
    (args.out / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
