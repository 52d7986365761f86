"""Every serving route through its real handler, on moto tables and a model trained on the tiny shop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from merchandiser import runtime
from merchandiser.publishing import user_profiles
from merchandiser.store import FeatureStore, SessionEvent

Call = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def call(aws, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Call:  # type: ignore[no-untyped-def]
    for key, value in {**aws.env(), "MODEL_DIR": str(model_dir)}.items():
        monkeypatch.setenv(key, value)
    runtime.dynamodb_resource.cache_clear()
    store = FeatureStore(aws.dynamodb, "users", "sessions", "items")
    store.put_profiles(user_profiles(model_dir), model_version="test")
    from lambdas.catalog import handler as catalog
    from lambdas.ranking import handler as ranking
    from lambdas.reranking import handler as reranking
    from lambdas.retrieval import handler as retrieval

    catalog.store.cache_clear()
    modules = {"retrieval": retrieval, "ranking": ranking, "reranking": reranking, "catalog": catalog}

    def send(
        function: str,
        method: str,
        resource: str,
        path: str,
        query: str = "",
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        event = proxy_event(
            method,
            Route(method, resource, function),
            path,
            params or {},
            query,
            {"Content-Type": "application/json"},
            raw,
        )
        response = modules[function].handler(event, LambdaContext(function))
        return response["statusCode"], json.loads(response["body"])

    return send


def recommendations(call: Call, user: str, query: str = "k=10") -> tuple[int, dict[str, Any]]:
    return call(
        "retrieval",
        "GET",
        "/users/{user_id}/recommendations",
        f"/users/{user}/recommendations",
        query,
        params={"user_id": user},
    )


def test_a_known_shopper_gets_a_personalized_page_without_purchases(call: Call, model_dir: Path) -> None:
    profile = next(p for p in user_profiles(model_dir) if p["purchased"])
    status, page = recommendations(call, profile["user_id"])
    assert status == 200
    assert page["personalized"] is True and page["degraded"] is False
    assert len(page["items"]) == 10
    assert not {i["item_id"] for i in page["items"]} & set(profile["purchased"])
    assert {"recommendation_id", "model_version", "variant"} <= set(page)
    assert all({"item_id", "score", "reason", "source"} <= set(i) for i in page["items"])


def test_an_unknown_shopper_gets_popular_items_then_a_session_moves_them(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    status, before = recommendations(call, "stranger", "k=30")
    assert status == 200 and before["personalized"] is False
    assert {i["source"] for i in before["items"]} == {"popularity"}
    # When the shopper views three hats (items 1, 4, 7 are hats)
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    events = [SessionEvent(f"e{n}", f"i0{n * 3 + 1}", "view", 1.0, 1_800_000_000.0 + n) for n in range(3)]
    store.append_session("stranger", events, [], expires_at=1_900_000_000)
    status, after = recommendations(call, "stranger", "k=30")
    # Then the page is personalized, leaves the viewed items out and leans to hats
    assert after["personalized"] is True
    assert not {i["item_id"] for i in after["items"]} & {"i01", "i04", "i07"}
    assert sum(i["category"] == "hats" for i in after["items"]) > sum(
        i["category"] == "hats" for i in before["items"]
    )


def test_a_category_page_shows_only_that_category(call: Call) -> None:
    status, page = recommendations(call, "u001", "k=5&surface=category&category=bags")
    assert status == 200 and {i["category"] for i in page["items"]} == {"bags"}


def test_a_feature_store_failure_degrades_instead_of_failing(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, user_id):  # type: ignore[no-untyped-def]
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchGetItem")

    monkeypatch.setattr(FeatureStore, "shopper", broken)
    status, page = recommendations(call, "u001")
    assert status == 200 and page["degraded"] is True and len(page["items"]) == 10


def test_rank_orders_the_callers_list(call: Call) -> None:
    ids = ["i02", "i01", "i00", "i01"]
    status, page = call(
        "ranking",
        "POST",
        "/users/{user_id}/rank",
        "/users/u000/rank",
        body={"item_ids": ids},
        params={"user_id": "u000"},
    )
    assert status == 200
    assert sorted(i["item_id"] for i in page["items"]) == ["i00", "i01", "i02"]
    scores = [i["score"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True)


def test_rerank_applies_the_rules(call: Call, model_dir: Path) -> None:
    profile = next(p for p in user_profiles(model_dir) if p["purchased"])
    bought = profile["purchased"][0]
    items = [{"item_id": bought, "score": 9.0}] + [
        {"item_id": f"i{n:02d}", "score": n / 10} for n in range(9)
    ]
    status, page = call(
        "reranking",
        "POST",
        "/users/{user_id}/rerank",
        f"/users/{profile['user_id']}/rerank",
        body={"items": items, "k": 5},
        params={"user_id": profile["user_id"]},
    )
    assert status == 200 and len(page["items"]) == 5
    assert bought not in {i["item_id"] for i in page["items"]}


def test_similar_and_popular(call: Call) -> None:
    status, similar = call(
        "retrieval", "GET", "/items/{item_id}/similar", "/items/i00/similar", "k=5", params={"item_id": "i00"}
    )
    assert (
        status == 200 and len(similar["items"]) == 5 and "i00" not in {i["item_id"] for i in similar["items"]}
    )
    status, popular = call("retrieval", "GET", "/items/popular", "/items/popular", "k=3&category=shoes")
    assert status == 200 and {i["category"] for i in popular["items"]} == {"shoes"}


def test_catalog_upsert_and_erasure(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    status, stored = call(
        "catalog",
        "PUT",
        "/items/{item_id}",
        "/items/new-1",
        body={"title": "Red scarf", "category": "hats", "price": 12.5},
        params={"item_id": "new-1"},
    )
    assert status == 200 and stored["stored"] is True
    assert aws.dynamodb.Table("items").get_item(Key={"item_id": "new-1"})["Item"]["title"] == "Red scarf"
    status, erased = call("catalog", "DELETE", "/users/{user_id}", "/users/u000", params={"user_id": "u000"})
    assert status == 200 and erased["erased"] is True
    assert "Item" not in aws.dynamodb.Table("users").get_item(Key={"user_id": "u000"})


RECOMMENDATIONS = ("retrieval", "GET", "/users/{user_id}/recommendations", "/users/u1/recommendations")
RANK = ("ranking", "POST", "/users/{user_id}/rank", "/users/u1/rank")
BAD_INPUT = [
    (*RECOMMENDATIONS, "k=0", None, 422),
    (*RECOMMENDATIONS, "k=101", None, 422),
    (*RECOMMENDATIONS, "k=x", None, 422),
    ("retrieval", "GET", "/items/{item_id}/similar", "/items/nope/similar", "", None, 404),
    (*RANK, "", b"{", 400),
    (*RANK, "", {"item_ids": ["nope"]}, 404),
    (*RANK, "", {"item_ids": "i00"}, 422),
    (*RANK, "", {"item_ids": ["i00"] * 1001}, 422),
    (
        "reranking",
        "POST",
        "/users/{user_id}/rerank",
        "/users/u1/rerank",
        "",
        {"items": [{"item_id": "i00"}]},
        422,
    ),
    ("catalog", "PUT", "/items/{item_id}", "/items/x1", "", {"title": ""}, 422),
]


@pytest.mark.parametrize(("function", "method", "resource", "path", "query", "body", "status"), BAD_INPUT)
def test_bad_input_is_a_4xx_with_a_message(
    call: Call, function: str, method: str, resource: str, path: str, query: str, body: Any, status: int
) -> None:
    params = {"user_id": "u1"} if "{user_id}" in resource else {"item_id": path.split("/")[2]}
    code, answer = call(function, method, resource, path, query, body, params)
    assert code == status, answer
    assert answer["error"] and answer["message"]
