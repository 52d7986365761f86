"""The staff's read-only routes (the console's) through the retrieval handler, on moto and the tiny model:
the live model with its gate decision, a shopper's events, catalogue search, stream figures and KPIs; and
promotions set through PUT /items reaching the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from merchandiser.api import ErrorBody, ItemSearch, KpiDocument, ModelSummary, ShopperEvents, StreamFigures
from merchandiser.experiments import write_kpis
from merchandiser.serving import runtime
from merchandiser.store import FeatureStore, SessionEvent, decision_key, read_manifest
from tests.integration.test_serving_api import Call, call, recommendations  # noqa: F401 (the fixture)

EPOCH = 1_800_000_000.0  # 2027-01-15: a session newer than the tiny shop's data


@pytest.fixture
def staff(call: Call) -> Iterator[Call]:  # noqa: F811 (the imported fixture, by name)
    runtime.reset()  # no overlay or S3 client cached by another test
    yield call
    runtime.reset()


def get(staff: Call, resource: str, path: str, query: str = "", **params: str) -> tuple[int, dict[str, Any]]:
    return staff("retrieval", "GET", resource, path, query, params=params)


def put_item(staff: Call, item_id: str, **fields: Any) -> dict[str, Any]:
    status, stored = staff(
        "catalog", "PUT", "/items/{item_id}", f"/items/{item_id}", body=fields, params={"item_id": item_id}
    )
    assert status == 200, stored
    runtime.reset()  # the next read sees the overlay now, not after its 10 s cache
    return stored


def test_the_live_model_shows_its_metrics_against_the_anchors_and_its_gate_decision(
    staff: Call,
    aws,
    model_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    manifest = read_manifest(model_dir)
    # Given no recorded decision (a model shipped in the first layer)
    status, before = get(staff, "/model", "/model")
    assert status == 200 and before["gate"] is None and "no gate decision" in before["gate_problem"]
    # When the publish step's decision is in the bucket
    decision = {
        "model_version": manifest["model_version"],
        "promote": True,
        "reasons": ["no production model"],
    }
    boto3.client("s3").put_object(
        Bucket="artifacts", Key=decision_key(manifest["model_version"]), Body=json.dumps(decision)
    )
    status, summary = get(staff, "/model", "/model")
    # Then the summary holds the version, training time, the served page's metrics beside the anchors
    # and the decision
    assert status == 200
    ModelSummary.model_validate(summary)
    assert summary["model_version"] == manifest["model_version"]
    assert summary["trained_at"] == manifest["created_at"] and summary["gate"] == decision
    assert {"pipeline", "popularity", "als"} <= set(summary["metrics"])
    assert "pipeline" not in summary["anchors"] and {"popularity", "als"} <= set(summary["anchors"])
    assert {"ranker", "ann"} <= set(summary["stages"]) and not set(summary["stages"]) & set(
        summary["anchors"]
    )
    best = summary["best_anchor"]
    assert best["ndcg@10"] == max(summary["metrics"][name]["ndcg@10"] for name in summary["anchors"])
    assert best["ratio"] == pytest.approx(summary["metrics"]["pipeline"]["ndcg@10"] / best["ndcg@10"])


def test_a_shoppers_events_come_newest_first_with_titles(staff: Call, aws) -> None:  # type: ignore[no-untyped-def]
    # Given a session of three events
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    events = [SessionEvent(f"e{n}", f"i0{n}", "view" if n else "click", 1.0, EPOCH + n) for n in range(3)]
    store.append_session("u001", events, [], expires_at=1_900_000_000)
    # When staff read them
    status, answer = get(staff, "/users/{user_id}/events", "/users/u001/events", user_id="u001")
    # Then they come newest first, each with its item's title and the time it happened
    assert status == 200
    ShopperEvents.model_validate(answer)
    assert [e["event_id"] for e in answer["events"]] == ["e2", "e1", "e0"]
    assert answer["events"][0] | {"timestamp": None} == {
        "event_id": "e2", "item_id": "i02", "title": "Item 2 bags", "category": "bags", "event_type": "view",
        "timestamp": None,
    }  # fmt: skip
    assert answer["events"][0]["timestamp"] == datetime.fromtimestamp(EPOCH + 2, UTC).isoformat()
    assert answer["known"] is True and answer["profile_recent"]
    # And a stranger is shown as unknown, not as an error
    status, stranger = get(staff, "/users/{user_id}/events", "/users/nobody/events", user_id="nobody")
    assert status == 200 and stranger["known"] is False and stranger["events"] == []


def test_an_unreadable_session_is_a_503_with_a_message(staff: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, user_id):  # type: ignore[no-untyped-def]
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchGetItem")

    monkeypatch.setattr(FeatureStore, "shopper", broken)
    status, answer = get(staff, "/users/{user_id}/events", "/users/u001/events", user_id="u001")
    assert status == 503 and answer["error"] == "UNAVAILABLE" and "try again" in answer["message"]
    ErrorBody.model_validate(answer)


def test_search_finds_by_title_and_puts_the_exact_id_first(staff: Call) -> None:
    status, found = get(staff, "/items", "/items", "q=HATS&k=100")
    assert status == 200
    ItemSearch.model_validate(found)
    assert found["matches"] == 16 and {i["category"] for i in found["items"]} == {"hats"}
    # an id is also a substring of others (i1 of i10..i19): the exact one comes first
    _, by_id = get(staff, "/items", "/items", "q=i01&k=5")
    assert by_id["items"][0]["item_id"] == "i01" and by_id["items"][0]["price"] == 11.0
    _, nothing = get(staff, "/items", "/items", "q=no-such-thing")
    assert nothing == {"query": "no-such-thing", "new_only": False, "matches": 0, "items": []}


def test_a_new_item_is_listed_as_added_and_a_promotion_reaches_the_page(staff: Call) -> None:
    # Given a new item upserted, and a known one promoted
    put_item(staff, "fresh-1", title="Fresh linen hat", category="hats", price=30.0)
    put_item(staff, "i05", title="Item 5 bags", category="bags", price=15.0, promoted=True)
    # When staff list the new items
    status, new = get(staff, "/items", "/items", "new=true")
    # Then the upserted item comes first, as added since the training; the tiny shop's never-bought
    # items are the explored ones
    assert status == 200 and new["items"][0]["item_id"] == "fresh-1"
    assert new["items"][0]["added_since_training"] is True and new["items"][0]["new"] is True
    assert all(item["new"] for item in new["items"])
    # And the promoted item says so in search, and on the shopper's page with its reason
    _, found = get(staff, "/items", "/items", "q=i05")
    assert found["items"][0]["promoted"] is True
    _, page = recommendations(staff, "u001", "k=10")
    assert any(i["item_id"] == "i05" and i["reason"] == "promoted" for i in page["items"])
    _, summary = get(staff, "/model", "/model")
    assert summary["overlay"]["promoted_items"] == ["i05"] and summary["overlay"]["new_items"] == 1


def test_an_item_set_out_of_stock_leaves_the_page(staff: Call) -> None:
    _, page = recommendations(staff, "u001", "k=10")
    first = page["items"][0]
    put_item(staff, first["item_id"], title=first["title"], category=first["category"], in_stock=False)
    _, after = recommendations(staff, "u001", "k=10")
    assert first["item_id"] not in {i["item_id"] for i in after["items"]}
    _, found = get(staff, "/items", "/items", f"q={first['item_id']}")
    assert found["items"][0]["in_stock"] is False


def test_the_stream_figures_show_the_last_hour(staff: Call, aws) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    FeatureStore(aws.dynamodb, "users", "sessions").record_batch(now, 7, now.timestamp() - 2)
    status, figures = get(staff, "/events/stats", "/events/stats")
    assert status == 200
    StreamFigures.model_validate(figures)
    assert figures["events_last_hour"] == 7 and len(figures["minutes"]) == 60
    assert figures["lag_seconds"] == pytest.approx(2.0, abs=1e-3)


def test_kpis_are_a_404_with_a_message_until_the_daily_job_writes_them(staff: Call) -> None:
    status, missing = get(staff, "/kpis", "/kpis")
    assert status == 404 and "daily experiment job" in missing["message"]
    document = {
        "computed_at": "2026-11-30T06:00:00+00:00",
        "period": {"start": "2026-11-17", "end": "2026-11-30"},
        "catalogue_size": 48,
        "surfaces": {"home": [{"day": "2026-11-30", "impressions": 4, "ctr": 0.25}]},
        "experiments": {},
    }
    write_kpis(boto3.client("s3"), "artifacts", document)
    status, stored = get(staff, "/kpis", "/kpis")
    assert status == 200 and stored == document
    KpiDocument.model_validate(stored)
