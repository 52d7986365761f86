"""Serving runs the experiments: each surface serves the shopper's variant, and every page is one impression
record on the stream; through the real handlers, on moto, with a model trained on the tiny shop."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest

from merchandiser.api import RecommendationPage
from merchandiser.experiments import ExperimentRepository, parse_experiment
from merchandiser.serving import runtime
from tests.integration.test_serving_api import POPULAR, RANK, SIMILAR, TOGETHER, Call, call, recommendations

__all__ = ["call"]  # the fixture, shared with test_serving_api

IMPRESSION_FIELDS = {
    "record_type", "recommendation_id", "user_id", "surface", "experiment", "variant", "model_version",
    "timestamp", "items",
}  # fmt: skip


@pytest.fixture
def experiments(aws) -> Iterator[ExperimentRepository]:  # type: ignore[no-untyped-def]
    """Puts experiments in the table serving reads; each test's first page reads them."""
    runtime.forget_experiments()
    yield ExperimentRepository("experiments", boto3.client("dynamodb"))
    runtime.wait_for_impressions(5.0)
    runtime.forget_experiments()


def start(repository: ExperimentRepository, surfaces: list[str], *variants: dict[str, Any]) -> None:
    repository.put(parse_experiment({"name": "exp", "surfaces": surfaces, "variants": list(variants)}))
    runtime.forget_experiments()


def impressions(aws) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every impression record on the stream so far, once the pages' buffers are empty."""
    assert runtime.wait_for_impressions(5.0)
    shard = aws.kinesis.describe_stream(StreamName="events")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = aws.kinesis.get_shard_iterator(
        StreamName="events", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = [json.loads(r["Data"]) for r in aws.kinesis.get_records(ShardIterator=iterator)["Records"]]
    return [record for record in records if record.get("record_type") == "impression"]


def test_without_an_experiment_a_page_is_production_and_one_impression_on_the_stream(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    # Given no experiment, When a shopper's home page is served
    runtime.forget_experiments()
    status, page = recommendations(call, "u001")
    assert status == 200 and (page["experiment"], page["variant"]) == ("", "production")
    RecommendationPage.model_validate(page)
    # Then exactly one impression went on the stream, in the shape the report's SQL reads
    [record] = impressions(aws)
    assert set(record) == IMPRESSION_FIELDS
    assert record["recommendation_id"] == page["recommendation_id"] and record["user_id"] == "u001"
    assert (record["surface"], record["experiment"], record["variant"]) == ("home", "", "production")
    assert record["model_version"] == page["model_version"] and record["timestamp"].endswith("Z")
    assert record["items"] == [
        {"item_id": item["item_id"], "position": n, "source": item["source"]}
        for n, item in enumerate(page["items"])
    ]


def test_a_popularity_holdout_serves_the_popular_list_through_the_same_rules(
    call: Call,
    aws,
    experiments: ExperimentRepository,
    model_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Given every shopper in the popularity holdout of an experiment on home
    start(experiments, ["home"], {"name": "holdout", "share": 1.0, "policy": "popularity"})
    # When a known shopper asks for a home page and for a category page (not in the experiment)
    status, home = recommendations(call, "u001")
    _, category = recommendations(call, "u001", "k=5&surface=category&category=bags")
    # Then home is the holdout's list: popular items, the shopper's purchases still left out
    assert status == 200 and (home["experiment"], home["variant"]) == ("exp", "holdout")
    assert home["personalized"] is False
    assert {item["source"] for item in home["items"]} <= {"popularity", "new arrival", "promoted"}
    from merchandiser.publishing import user_profiles

    bought = next(p for p in user_profiles(model_dir) if p["user_id"] == "u001")["purchased"]
    assert not {item["item_id"] for item in home["items"]} & set(bought)
    # And the surface it does not cover is production
    assert (category["experiment"], category["variant"]) == ("", "production")
    by_page = {record["recommendation_id"]: record for record in impressions(aws)}
    assert by_page[home["recommendation_id"]]["variant"] == "holdout"


def test_pinned_rules_lay_over_the_retailers_and_a_missing_model_version_degrades(
    call: Call, experiments: ExperimentRepository
) -> None:
    # Given a variant that excludes hats and pins a model version this container has not loaded
    start(
        experiments,
        ["home"],
        {
            "name": "no-hats",
            "share": 1.0,
            "rules": {"exclude_categories": ["hats"]},
            "model_version": "v-other",
        },
    )
    status, page = recommendations(call, "u001", "k=10")
    # Then no hat is shown, the loaded model serves, and the response says so, in the shopper's variant
    assert status == 200 and page["variant"] == "no-hats"
    assert "hats" not in {item["category"] for item in page["items"]} and len(page["items"]) == 10
    assert page["degraded"] is True and page["degraded_reasons"] == ["model_version"]


def test_an_interleaving_variant_drafts_two_rankers_and_records_each_items_team(
    call: Call,
    aws,
    experiments: ExperimentRepository,  # type: ignore[no-untyped-def]
) -> None:
    # Given the learned ranker (A) against the ALS order (B) on home
    start(
        experiments,
        ["home"],
        {
            "name": "mixed",
            "share": 1.0,
            "kind": "interleaving",
            "rankers": [{"name": "lightgbm"}, {"name": "als", "order": "als"}],
        },
    )
    status, page = recommendations(call, "u001", "k=10")
    assert status == 200 and page["variant"] == "mixed" and len(page["items"]) == 10
    # Then the impression carries the team of every item, from both rankers
    record = next(r for r in impressions(aws) if r["recommendation_id"] == page["recommendation_id"])
    assert len(record["interleaving"]) == len(record["items"]) == 10
    assert set(record["interleaving"]) == {"A", "B"}


@pytest.mark.parametrize(
    ("route", "query", "params"),
    [
        (SIMILAR, "k=5&user_id=u001", {"item_id": "i00"}),
        (TOGETHER, "k=5&user_id=u001", {"item_id": "i00"}),
        (POPULAR, "k=5&user_id=u001", {}),
    ],
)
def test_item_surfaces_serve_a_holdouts_simple_list_without_the_item_itself(
    call: Call, experiments: ExperimentRepository, route: tuple[str, ...], query: str, params: dict[str, str]
) -> None:
    start(
        experiments,
        ["similar", "bought-together", "popular"],
        {"name": "trending-list", "share": 1.0, "policy": "trending"},
    )
    status, page = call(*route, query, params=params)
    assert status == 200 and (page["experiment"], page["variant"]) == ("exp", "trending-list")
    assert {item["source"] for item in page["items"]} == {"trending"}
    assert "i00" not in {item["item_id"] for item in page["items"]} or route is POPULAR
    # without the shopper the same surface is production: the user is the unit of randomisation
    status, anonymous = call(*route, "k=5", params=params)
    assert (anonymous["experiment"], anonymous["variant"]) == ("", "production")


def test_rank_in_a_holdout_orders_the_given_list_by_popularity(
    call: Call, experiments: ExperimentRepository, model_dir: Path
) -> None:
    start(experiments, ["rank"], {"name": "by-popularity", "share": 1.0, "policy": "popularity"})
    ids = [f"i{n:02d}" for n in range(12)]
    status, page = call(*RANK, body={"item_ids": ids}, params={"user_id": "u1"})
    assert status == 200 and page["variant"] == "by-popularity"
    from merchandiser.serving import load_model

    model = load_model(model_dir).model
    assert model is not None
    popularity = {
        item_id: float(model.items.popularity[model.items.catalog.row_of[item_id]]) for item_id in ids
    }
    shown = [item["item_id"] for item in page["items"]]
    assert shown == sorted(ids, key=lambda item_id: -popularity[item_id])


def test_an_unreadable_experiments_table_serves_production_and_says_so(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given serving pointed at an experiments table that does not exist
    monkeypatch.setenv("EXPERIMENTS_TABLE", "no-such-table")
    runtime.forget_experiments()
    status, page = recommendations(call, "u001")
    # Then the page is served, production, degraded by the experiments
    assert status == 200 and len(page["items"]) == 10
    assert (page["experiment"], page["variant"]) == ("", "production")
    assert "experiments" in page["degraded_reasons"]


def test_a_failing_impression_put_is_counted_and_the_page_still_served(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given serving pointed at a stream that does not exist, so every PutRecords fails
    monkeypatch.setenv("EVENTS_STREAM", "no-such-stream")
    runtime.forget_experiments()
    out = io.StringIO()
    with redirect_stdout(out):  # the metrics (EMF) of the two pages
        first_status, first = recommendations(call, "u001")
        second_status, _ = recommendations(call, "u002")
    # Then both pages are served, and the dropped impressions are counted in ImpressionsDropped
    assert first_status == second_status == 200 and len(first["items"]) == 10
    blobs = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith('{"_aws"')]
    assert sum(value for blob in blobs for value in blob.get("ImpressionsDropped", [])) >= 1
    # And each page's own blob counts it by surface and variant
    pages = [blob for blob in blobs if "Impressions" in blob]
    assert [
        (blob["surface"], blob["variant"], blob["Impressions"], blob["ItemsShown"]) for blob in pages
    ] == [("home", "production", [1.0], [10.0])] * 2
