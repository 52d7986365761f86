"""The shopper simulator against a real twin: the twin receives exactly the simulated events, and
personalized pages earn more simulated clicks than the popular list shown to the same shoppers."""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from local_twin.simulation.browsing import SimulationConfig
from local_twin.simulation.client import TwinHttpApi
from local_twin.simulation.results import SimulationResult
from local_twin.simulation.truth import ShopTruth, truth_for_data
from local_twin.simulator import simulate
from local_twin.twin import Twin
from merchandiser.store import EVENTS_PREFIX

pytestmark = pytest.mark.slow

SHOPPERS, SEED = 250, 21
COUNTED = {"click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}


@pytest.fixture(scope="module")
def truth(twin: Twin) -> ShopTruth:
    return truth_for_data(twin.workdir / "shop")


def run(twin: Twin, truth: ShopTruth, policy: str) -> SimulationResult:
    state = twin.state()
    api = TwinHttpApi(state["api_url"], state.get("api_key"))
    config = SimulationConfig(shoppers=SHOPPERS, seed=SEED, policy=policy, max_seconds=900.0)
    return simulate(api, truth, config)


@pytest.fixture(scope="module")
def personalized(twin: Twin, truth: ShopTruth) -> SimulationResult:
    return run(twin, truth, "recommendations")


@pytest.fixture(scope="module")
def popular(twin: Twin, truth: ShopTruth, personalized: SimulationResult) -> SimulationResult:
    # After the personalized run: popular pages do not depend on what the shoppers did before
    return run(twin, truth, "popular")


def archived(twin: Twin, run_id: str) -> list[dict[str, Any]]:
    """Every record of the run that the twin's Firehose archived, after the stream is drained."""
    assert twin.poller is not None
    twin.poller.drain()
    twin.poller.flush_archive()
    s3, bucket = twin.client("s3"), twin.state()["artifacts_bucket"]
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=EVENTS_PREFIX):
        for item in page.get("Contents", []):
            if not item["Key"].endswith(".jsonl.gz"):
                continue
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for line in body.splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # garbage other tests put on the stream
                if isinstance(record, dict) and str(record.get("event_id", "")).startswith(run_id):
                    records.append(record)
    return records


def test_the_twin_received_exactly_the_simulated_events(twin: Twin, personalized: SimulationResult) -> None:
    # Given a simulation of 250 shoppers on the twin, without a failed call
    assert personalized.failures == personalized.retried == [] and personalized.shoppers_done == SHOPPERS
    totals = personalized.totals()
    assert totals["users"] == SHOPPERS and totals["purchases"] > 0
    # When the twin's archive of its events stream is read back
    records = archived(twin, personalized.run_id)
    # Then it holds every event the simulator sent, once, as sent, and nothing else of this run
    sent = {event["event_id"]: event for event in personalized.events}
    assert sorted(record["event_id"] for record in records) == sorted(sent)
    for record in records:
        event = sent[record["event_id"]]
        for field in ("user_id", "item_id", "event_type", "session_id", "recommendation_id", "position"):
            assert record[field] == event[field], field
        assert datetime.fromisoformat(record["timestamp"]) == datetime.fromisoformat(event["timestamp"])
        if event["event_type"] == "purchase":
            assert (record["quantity"], record["price"]) == (event["quantity"], event["price"])
    kinds = Counter(COUNTED[record["event_type"]] for record in records)
    assert kinds == Counter({name: totals[name] for name in COUNTED.values()})
    # And every event quotes a page the twin served this shopper, at the item's position on it
    pages = {page.recommendation_id: page for page in personalized.impressions}
    assert len(pages) == len(personalized.impressions) == totals["impressions"]
    for event in personalized.events:
        page = pages[event["recommendation_id"]]
        assert page.user_id == event["user_id"]
        assert page.items[event["position"]].item_id == event["item_id"]
    assert {page.model_version for page in pages.values()} == {twin.publish_result["model_version"]}


def test_no_simulated_event_was_dead_lettered(twin: Twin, personalized: SimulationResult) -> None:
    archived(twin, personalized.run_id)  # drains the stream first
    sqs = twin.client("sqs")
    messages = sqs.receive_message(QueueUrl=twin.state()["dead_letter_queue_url"], MaxNumberOfMessages=10)
    assert not [m for m in messages.get("Messages", []) if personalized.run_id in m["Body"]]


def per_user_ctr(result: SimulationResult, surface: str) -> dict[str, float]:
    pages, clicks = Counter[str](), Counter[str]()
    for page in result.impressions:
        if page.surface == surface:
            pages[page.user_id] += 1
            clicks[page.user_id] += sum(item.clicked for item in page.items)
    return {user: clicks[user] / pages[user] for user in pages}


def test_personalized_pages_earn_more_clicks_than_the_popular_list_for_the_same_shoppers(
    personalized: SimulationResult, popular: SimulationResult
) -> None:
    # Given the same 250 shoppers, shown their personalized home pages, then the popular list
    assert popular.failures == popular.retried == []
    home, best_sellers = per_user_ctr(personalized, "home"), per_user_ctr(popular, "popular")
    assert set(home) == set(best_sellers) and len(home) == SHOPPERS
    # When their click-through (clicks per page, the shopper as the unit) is compared, paired by shopper
    difference = np.array([home[user] - best_sellers[user] for user in home])
    z = difference.mean() / (difference.std(ddof=1) / math.sqrt(len(difference)))
    p_value = math.erfc(abs(z) / math.sqrt(2))  # two-sided, normal approximation (250 shoppers)
    ctr_home, ctr_popular = np.mean(list(home.values())), np.mean(list(best_sellers.values()))
    print(
        f"\nsimulated CTR per page: personalized {ctr_home:.3f}, popular {ctr_popular:.3f}, "
        f"lift {ctr_home / ctr_popular - 1:+.1%}, z {z:.1f}, p {p_value:.2g} ({len(difference)} shoppers)"
    )
    # Then personalized wins, significantly
    assert difference.mean() > 0 and p_value < 0.01
