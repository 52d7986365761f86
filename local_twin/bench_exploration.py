"""The exploration benchmark (``make bench``): Thompson sampling against the uniform choice of new items,
over simulated days, in-process (no HTTP, no twin): the real recommender, event processor and DynamoDB
record handlers on moto, the simulator's shoppers with known tastes.

    python -m local_twin.bench_exploration [--days 4] [--shoppers 100] [--seed 7] [--out FILE]

A synthetic shop (``training.datasets.synthetic_shop``; its latent tastes are the shoppers' truth) is cut
at ``CUT_DAY``: the model learns from what happened before, on the catalogue of that day (ALS order, no
ranker: the exploration slots do not depend on it). Then, each simulated day, the items the shop created
that day arrive through the catalogue overlay (what ``PUT /items`` writes), shoppers browse home pages
(``explore_share`` 0.2: two exploration slots in ten) and every page's impression and events go through
the event processor, which keeps the exploration posteriors that serving reads back every
``REFRESH_PAGES`` pages. The same shoppers, seeds and arrivals for both policies; only the exploration
slots' choice differs. Printed per day and policy: the share of all clicks that went to new items (no
interactions in the model: young items of the training catalogue and the day's arrivals), the click
rate of the exploration slots, and how many new items
graduated into the candidates or faded. Figures, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import numpy as np
import pandas as pd
from moto import mock_aws

from local_twin.simulation.browsing import SimulationConfig
from local_twin.simulation.truth import SyntheticTruth
from local_twin.simulator import simulate
from merchandiser.catalog import ExplorationPolicy, exploration_of, with_exploration, with_overlay
from merchandiser.reranking import NEW_ARRIVAL, THOMPSON, UNIFORM, new_item_rows
from merchandiser.serving import Model, Recommender, impression_record
from merchandiser.settings import RetailerRules
from merchandiser.store import FeatureStore, OverlayItem, create_counters_table
from merchandiser.stream import DeadLetters, EventProcessor, StreamRecord
from training.bundle import user_feature_records
from training.channels import read_channels
from training.datasets import synthetic_shop
from training.fit import Hyperparameters, build_catalog, epoch_seconds, fit_retrieval

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "build" / "bench"
DAY = 86_400.0
SHOP = {"n_users": 1500, "n_items": 600, "n_days": 60, "seed": 11, "start": "2026-01-01"}
CUT_DAY = 50  # the model knows the shop up to this day; items created later arrive one day at a time
REFRESH_PAGES = 50  # pages between two reads of the posteriors (a container's cache period)
EXPLORE_SHARE = 0.2
POLICY = ExplorationPolicy(graduate_ctr=0.08, graduate_impressions=30, fade_impressions=200)
TABLES = {"users": "users", "sessions": "sessions", "items": "items"}


@dataclass
class InProcessShop:
    """The simulator's ``ShopApi`` over a recommender in this process: home pages and POST /events;
    every page's impression record and every event queued as the stream's records, in order."""

    recommender: Recommender
    served_at: float
    records: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(path)
        segments = parts.path.strip("/").split("/")
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "recommendations":
            page = self.recommender.recommend(unquote(segments[1]), int(query.get("k", 10)))
        elif len(segments) == 3 and segments[0] == "items" and segments[2] == "similar":
            page = self.recommender.similar(unquote(segments[1]), int(query.get("k", 10)))
        else:
            return 404, {"error": "NOT_FOUND", "message": path}
        self.records.append(impression_record(page, None, self.served_at))
        self.pages += 1
        return 200, page

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.records.extend(body["events"])
        return 202, {"accepted": len(body["events"])}


def prepare_shop(work: Path) -> Path:
    shop_dir = work / "shop"
    if not (shop_dir / "interactions.csv").exists():
        synthetic_shop.generate(shop_dir, **SHOP)  # type: ignore[arg-type]
    return shop_dir


def stream_records(records: list[dict[str, Any]], first: int) -> list[StreamRecord]:
    return [
        StreamRecord(str(first + number), str(record.get("user_id") or "page"), json.dumps(record).encode())
        for number, record in enumerate(records)
    ]


def run_policy(
    policy: str,
    base: Model,
    arrivals: list[OverlayItem],
    profiles: list[dict[str, Any]],
    truth: SyntheticTruth,
    cut: float,
    days: int,
    shoppers: int,
    seed: int,
) -> list[dict[str, Any]]:
    """``days`` simulated days of one exploration policy on a fresh moto account; one row per day."""
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        for name in TABLES.values():
            key = "item_id" if name == "items" else "user_id"
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        create_counters_table(boto3.client("dynamodb"), "counters")
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
        store = FeatureStore(
            dynamodb, TABLES["users"], TABLES["sessions"], TABLES["items"], counters_table="counters"
        )
        store.put_profiles(profiles, model_version=base.version)
        rules = RetailerRules.model_validate({"explore_policy": policy, "explore_share": EXPLORE_SHARE})
        rows: list[dict[str, Any]] = []
        sequence = 0
        for day in range(days):
            day_start = cut + day * DAY
            clock = lambda moment=day_start: moment  # noqa: E731 - the day's simulated clock
            landed = [item for item in arrivals if (item.added_at or 0.0) < day_start + DAY]
            overlaid = Model(with_overlay(base.items, {item.item_id: item for item in landed}), base.ranker)
            # new at the day's start: no interactions the model knows of, young or just arrived
            catalog = overlaid.items.catalog
            new_ids = set(
                catalog.item_ids[new_item_rows(overlaid.items, day_start, rules.new_item_days)].tolist()
            )
            processor = EventProcessor(store, DeadLetters(sqs, queue), 7 * 86_400, clock=clock)

            def explored(model: Model = overlaid, moment: float = day_start) -> Model:
                pool = new_item_rows(model.items, moment, rules.new_item_days)
                posteriors = store.posteriors(model.items.catalog.item_ids[pool].tolist())
                exploration = exploration_of(model.items.catalog, posteriors, POLICY)
                return Model(with_exploration(model.items, exploration), model.ranker)

            recommender = Recommender(model=explored(), store=store, clock=clock, merchandising=rules)
            shop = InProcessShop(recommender, day_start)
            totals = {"pages": 0, "clicks": 0, "new_clicks": 0, "explore_shown": 0, "explore_clicks": 0}
            batch = max(1, REFRESH_PAGES // 3)  # about 3 pages a shopper
            for first in range(0, shoppers, batch):
                config = SimulationConfig(
                    shoppers=min(batch, shoppers - first),
                    seed=seed * 1000 + day * 100 + first,
                    start=datetime.fromtimestamp(day_start, UTC),
                    k=10,
                    workers=1,
                    arrival_seconds=0.5,
                    retry_pause_seconds=0.0,
                )
                result = simulate(shop, truth, config)
                for page in result.impressions:
                    totals["pages"] += 1
                    for item in page.items:
                        totals["clicks"] += item.clicked
                        totals["new_clicks"] += item.clicked and item.item_id in new_ids
                        if item.source == NEW_ARRIVAL:
                            totals["explore_shown"] += 1
                            totals["explore_clicks"] += item.clicked
                records, shop.records = shop.records, []
                for start in range(0, len(records), 100):
                    processor.process(stream_records(records[start : start + 100], sequence))
                    sequence += 100
                shop.recommender = replace(recommender, model=explored())
            exploration = shop.recommender.model.items.exploration
            new_rows = np.array([catalog.row_of[i] for i in sorted(new_ids)], dtype=np.int64)
            rows.append(
                {
                    "day": day + 1,
                    "policy": policy,
                    "new_items": len(new_ids),
                    **totals,
                    "new_click_share": totals["new_clicks"] / max(totals["clicks"], 1),
                    "explore_ctr": totals["explore_clicks"] / max(totals["explore_shown"], 1),
                    "graduated": int(exploration.graduated[new_rows].sum()) if len(new_rows) else 0,
                    "faded": int(exploration.faded[new_rows].sum()) if len(new_rows) else 0,
                }
            )
            print(f"  {policy} day {day + 1}: {json.dumps(rows[-1])}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--shoppers", type=int, default=100, help="shoppers per simulated day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "exploration.json")
    args = parser.parse_args(argv)
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing")):  # fmt: skip
        os.environ.setdefault(name, value)
    started = time.perf_counter()
    work = BENCH_DIR / "exploration"
    shop_dir = prepare_shop(work)
    channels = read_channels(shop_dir, shop_dir, shop_dir)
    cut = pd.Timestamp(SHOP["start"], tz="UTC") + pd.Timedelta(days=CUT_DAY)
    known_items = channels.items[~(channels.items["created_at"] >= cut)]
    later = channels.items[channels.items["created_at"] >= cut].sort_values("created_at", kind="stable")
    catalog = build_catalog(known_items)
    before = channels.interactions[channels.interactions["timestamp"] < cut]
    before = before[before["item_id"].isin(set(catalog.item_ids.tolist()))]
    hp = Hyperparameters(factors=32, iterations=8, seed=args.seed)
    items, histories = fit_retrieval(before, catalog, epoch_seconds(cut), hp, channels.users)
    base = Model(items, None)
    profiles = list(user_feature_records(histories, channels.users, catalog.item_ids))
    arrivals = [
        OverlayItem(
            str(r.item_id),
            str(r.title),
            str(r.category),
            str(r.brand),
            float(r.price),
            bool(r.in_stock),
            added_at=float(epoch_seconds(r.created_at)),
        )
        for r in later.itertuples(index=False)
    ]
    truth = SyntheticTruth.from_parameters(SHOP)
    print(
        f"shop: {len(catalog)} items known at day {CUT_DAY}, {len(arrivals)} arriving after, "
        f"{len(before)} events learnt from; {args.shoppers} shoppers a day for {args.days} days",
        flush=True,
    )
    results = {
        policy: run_policy(
            policy, base, arrivals, profiles, truth, epoch_seconds(cut), args.days, args.shoppers, args.seed
        )
        for policy in (UNIFORM, THOMPSON)
    }
    print("\nexploration of new items: share of all clicks on new items (no interactions before training)")
    print(f"{'day':>4}  {'new items':>9}  {'uniform':>16}  {'thompson':>16}  {'graduated':>9}  {'faded':>5}")
    print(f"{'':>4}  {'':>9}  {'share  slot CTR':>16}  {'share  slot CTR':>16}  {'(thompson)':>9}")
    for uniform, thompson in zip(results[UNIFORM], results[THOMPSON], strict=True):
        print(
            f"{uniform['day']:>4}  {uniform['new_items']:>9}  {uniform['new_click_share']:>7.1%} "
            f"{uniform['explore_ctr']:>8.3f}  {thompson['new_click_share']:>7.1%}"
            f" {thompson['explore_ctr']:>8.3f}"
            f"  {thompson['graduated']:>9}  {thompson['faded']:>5}"
        )
    summary = {
        policy: {
            "new_click_share": sum(r["new_clicks"] for r in rows) / max(sum(r["clicks"] for r in rows), 1),
            "explore_ctr": sum(r["explore_clicks"] for r in rows)
            / max(sum(r["explore_shown"] for r in rows), 1),
        }
        for policy, rows in results.items()
    }
    for policy, figures in summary.items():
        print(
            f"{policy:>9}, all days: new items' click share {figures['new_click_share']:.1%}, "
            f"exploration slots' CTR {figures['explore_ctr']:.3f}"
        )
    seconds = time.perf_counter() - started
    print(f"({seconds:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"shop": SHOP, "cut_day": CUT_DAY, "days": results, "summary": summary,
                                    "seconds": round(seconds, 1)}, indent=2))  # fmt: skip
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
