"""``merchandiser demo``: the whole system end to end on the local twin, narrated step by step."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_twin.api_client import call
from local_twin.experiment_cli import AdminApi
from local_twin.script_mode import channel_dirs
from local_twin.simulation.browsing import SimulationConfig
from local_twin.simulation.client import TwinHttpApi
from local_twin.simulation.truth import truth_for_data
from local_twin.simulator import simulate
from local_twin.twin import Twin
from merchandiser.experiments import render_table
from training.channels import read_channels

DEMO_SHOPPER_EVENTS = ("view", "click", "add_to_cart")
DEMO_SHOPPERS = 200
DEMO_EXPERIMENT = {
    "name": "home-holdout",
    "description": "personalized home pages against the best sellers",
    "surfaces": ["home"],
    "variants": [
        {"name": "personalized", "share": 0.5},
        {"name": "holdout", "share": 0.5, "policy": "popularity"},
    ],
}


def step(number: int, total: int, title: str, seconds: float | None = None) -> None:
    timing = f"  ({seconds:.1f} s)" if seconds is not None else ""
    print(f"\n[{number}/{total}] {title}{timing}", flush=True)


def show_page(response: dict[str, Any], limit: int = 10) -> None:
    for rank, item in enumerate(response["items"][:limit], start=1):
        print(
            f"      {rank:>2}. {item['item_id']:<10} {item['title'][:38]:<38} {item['category']:<14} "
            f"{item['score']:>8.3f}  {item['reason']}"
        )


def metrics_table(evaluation: dict[str, Any]) -> None:
    models = evaluation.get("models", {})
    names = sorted({metric for values in models.values() for metric in values})
    shown = [n for n in ("ndcg@10", "recall@20", "hit@10", "coverage@20") if n in names] or names[:4]
    print(f"      {'model':<20}" + "".join(f"{name:>13}" for name in shown))
    for model, values in models.items():
        print(f"      {model:<20}" + "".join(f"{values.get(name, float('nan')):>13.4f}" for name in shown))


def run(data_dir: Path, workdir: Path, data_label: str) -> int:
    total = 7
    started = time.perf_counter()
    twin = Twin(workdir)
    try:
        resources = twin.start()
        step(
            1,
            total,
            "Deployed the CDK app into the local twin (moto on 127.0.0.1)",
            twin.timings.steps["moto"] + twin.timings.steps["deploy"],
        )
        print(f"      endpoint {twin.endpoint_url}; stacks {', '.join(resources.stack_outputs)}")
        tables = (
            resources.users_table,
            resources.items_table,
            resources.sessions_table,
            resources.counters_table,
        )
        print(f"      tables {', '.join(tables)}")
        print(f"      stream {resources.events_stream}; bucket {resources.artifacts_bucket}")

        shop = read_channels(**channel_dirs(data_dir))
        interactions, report = shop.interactions, shop.report
        twin.load_data(data_dir)
        step(2, total, f"Training data: {data_label}")
        print(
            f"      {report['rows_kept']:,} events, {report['users']:,} shoppers, {report['items']:,} items, "
            f"{report['first_timestamp'][:10]} .. {report['last_timestamp'][:10]}; "
            f"rejected rows {report['rejected'] or 'none'}"
        )
        print(
            "      event types "
            + ", ".join(f"{k} {v:,}" for k, v in interactions["event_type"].value_counts().items())
        )

        result = twin.train_and_publish()
        step(
            3,
            total,
            "Training job: start_training λ → SageMaker script mode → training/train.py",
            twin.timings.steps["training"],
        )
        print("      offline evaluation on held-out future interactions (temporal split):")
        metrics_table(twin.evaluation)
        step(4, total, "Publish λ: quality gate, artifacts, shopper profiles", twin.timings.steps["publish"])
        reasons = "; ".join(result["reasons"])
        print(f"      model {result['model_version']}: promote={result['promote']} — {reasons}")
        print(
            f"      shopper profiles written to DynamoDB: {result.get('profiles_loaded', 0):,} "
            f"({result.get('profiles_unchanged', 0):,} unchanged, not rewritten)"
        )

        api = twin.serve()
        known = interactions["user_id"].value_counts().index[len(interactions["user_id"].unique()) // 10]
        key = twin.api_key  # the storefront's x-api-key (in the state file as api_key)
        _, _, cold = call("GET", f"{api}/users/{known}/recommendations?k=10", api_key=key)  # loads the model
        status, page, millis = call("GET", f"{api}/users/{known}/recommendations?k=10", api_key=key)
        step(
            5,
            total,
            f"Recommendations for known shopper {known}: GET /users/{known}/recommendations "
            f"→ {status} in {millis:.0f} ms (first call, loading the model: {cold:.0f} ms)",
        )
        history = interactions[interactions["user_id"] == known].merge(shop.items, on="item_id")
        top = history["category"].value_counts().head(3)
        print(
            f"      their history: {len(history)} events; top categories "
            + ", ".join(f"{name} ({count})" for name, count in top.items())
        )
        print(
            f"      model {page['model_version']}, variant {page['variant']}, "
            f"recommendation_id {page['recommendation_id']}"
        )
        show_page(page)

        new_shopper_demo(twin, api, total)
        experiment_demo(twin, data_dir, total)
        print(f"\nDone in {time.perf_counter() - started:.1f} s. Twin state: {json.dumps(twin.state())}")
        return 0
    finally:
        twin.stop()


def new_shopper_demo(twin: Twin, api: str, total: int) -> None:
    key = twin.api_key
    shopper = f"new-{uuid.uuid4().hex[:8]}"
    status, before, millis = call("GET", f"{api}/users/{shopper}/recommendations?k=10", api_key=key)
    step(6, total, f"A brand-new shopper {shopper}")
    print(f"      before any event ({status}, {millis:.0f} ms; personalized={before['personalized']}):")
    show_page(before, limit=5)
    # Three items of one category the new shopper's first page does not lead with.
    shown = Counter(item["category"] for item in before["items"])
    _, popular, _ = call("GET", f"{api}/items/popular?k=100", api_key=key)
    target = next(i for i in popular["items"] if shown[i["category"]] <= 1)["category"]
    _, in_category, _ = call("GET", f"{api}/items/popular?k=3&category={target}", api_key=key)
    picks = [item["item_id"] for item in in_category["items"]][:3]
    now = datetime.now(UTC).isoformat()
    status, accepted, _ = call(
        "POST",
        f"{api}/events",
        {"events": [{"user_id": shopper, "item_id": picks[0], "event_type": "view", "timestamp": now}]},
        api_key=key,
    )
    kinesis = twin.client("kinesis")
    for item_id, event_type in zip(picks[1:], DEMO_SHOPPER_EVENTS[1:], strict=True):
        event = {
            "event_id": str(uuid.uuid4()),
            "user_id": shopper,
            "item_id": item_id,
            "event_type": event_type,
            "timestamp": now,
        }
        kinesis.put_record(
            StreamName=twin.state()["events_stream"], Data=json.dumps(event).encode(), PartitionKey=shopper
        )
    print(
        f"      3 events on {target!r} items {', '.join(picks)}: POST /events → {status} "
        f"({accepted.get('accepted')} accepted), then 2 Kinesis PutRecord straight to the stream"
    )
    assert twin.poller is not None
    twin.poller.drain()
    status, after, millis = call("GET", f"{api}/users/{shopper}/recommendations?k=10", api_key=key)
    print(f"      after the events ({status}, {millis:.0f} ms; personalized={after['personalized']}):")
    show_page(after, limit=10)
    share_before = sum(item["category"] == target for item in before["items"])
    share_after = sum(item["category"] == target for item in after["items"])
    changed = len({i["item_id"] for i in after["items"]} - {i["item_id"] for i in before["items"]})
    print(
        f"      {changed} of 10 items changed; {target!r} items on the page: {share_before} → {share_after}"
    )


def experiment_demo(twin: Twin, data_dir: Path, total: int) -> None:
    """Step 7: personalized pages against a popularity holdout, judged by simulated shoppers."""
    admin = AdminApi(twin.state())
    name = DEMO_EXPERIMENT["name"]
    status, stored = admin.call("PUT", f"/experiments/{name}", DEMO_EXPERIMENT)
    if status != 200:
        raise RuntimeError(f"PUT /experiments/{name}: {status} {stored}")
    twin.refresh_experiments()  # in AWS: within EXPERIMENTS_CACHE_SECONDS
    started = time.perf_counter()
    state = twin.state()
    result = simulate(
        TwinHttpApi(state["api_url"], state.get("api_key")),
        truth_for_data(data_dir),
        SimulationConfig(shoppers=DEMO_SHOPPERS, seed=7),
    )
    twin.settle()  # every impression and event in the archive
    step(
        7,
        total,
        f"Experiment {name}: PUT /experiments/{name} (personalized 50% vs popularity holdout 50% on home),"
        f" {result.shoppers_done} simulated shoppers, GET /experiments/{name}/report",
        time.perf_counter() - started,
    )
    totals = result.totals()
    print(
        f"      the simulator saw {totals['impressions']} pages, {len(result.events)} events"
        f" ({len(result.failures)} failed calls); the report, computed by SQL over the twin's archive:"
    )
    status, report = admin.call("GET", f"/experiments/{name}/report")
    if status != 200:
        raise RuntimeError(f"GET /experiments/{name}/report: {status} {report}")
    for line in render_table(report).splitlines():
        print(f"      {line}")
    admin.call("DELETE", f"/experiments/{name}")
    print(f"      DELETE /experiments/{name}: stopped; home pages are production again")
