"""Every serving route through its real handler, on moto tables and a model trained on the tiny shop."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from merchandiser.api import ErrorBody, Health, RecommendationPage
from merchandiser.publishing import user_profiles
from merchandiser.serving import Model, Recommender, runtime
from merchandiser.settings import RetailerRules
from merchandiser.store import FeatureStore, SessionEvent
from stacks.constants import API_ROUTES
from tests.tiny_shop import START

Call = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def call(aws, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Call:  # type: ignore[no-untyped-def]
    for key, value in {**aws.env(), "MODEL_DIR": str(model_dir)}.items():
        monkeypatch.setenv(key, value)
    runtime.reset()  # a new container per test: each test's moto tables start their catalogue over
    store = FeatureStore(aws.dynamodb, "users", "sessions", "items")
    store.put_profiles(user_profiles(model_dir), model_version="test")
    from lambdas.catalog import handler as catalog
    from lambdas.events_api import handler as events_api
    from lambdas.experiments import handler as experiments
    from lambdas.ranking import handler as ranking
    from lambdas.reranking import handler as reranking
    from lambdas.retrieval import handler as retrieval

    catalog.store.cache_clear()
    experiments.repository.cache_clear()
    modules = {
        "retrieval": retrieval,
        "ranking": ranking,
        "reranking": reranking,
        "catalog": catalog,
        "events_api": events_api,
        "experiments": experiments,
    }

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
    RecommendationPage.model_validate(page)
    assert page["personalized"] is True and page["degraded"] is False
    assert len(page["items"]) == 10
    assert not {i["item_id"] for i in page["items"]} & set(profile["purchased"])
    assert {"recommendation_id", "model_version", "variant"} <= set(page)
    assert all({"item_id", "score", "reason", "source"} <= set(i) for i in page["items"])


def test_an_unknown_shopper_gets_popular_items_then_a_session_moves_them(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    status, before = recommendations(call, "stranger", "k=30")
    assert status == 200 and before["personalized"] is False
    assert {i["source"] for i in before["items"]} <= {"popularity", "trending"}
    # When the shopper views three hats (items 1, 4, 7 are hats)
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    events = [SessionEvent(f"e{n}", f"i0{n * 3 + 1}", "view", 1.0, 1_800_000_000.0 + n) for n in range(3)]
    store.append_session("stranger", events, [], expires_at=1_900_000_000)
    status, after = recommendations(call, "stranger", "k=30")
    # Then the page is personalized, leaves the viewed items out and leans to hats at its top
    # (the category cap keeps any category to 30% of the whole page)
    assert after["personalized"] is True
    assert not {i["item_id"] for i in after["items"]} & {"i01", "i04", "i07"}
    assert sum(i["category"] == "hats" for i in after["items"][:6]) > sum(
        i["category"] == "hats" for i in before["items"][:6]
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
    RecommendationPage.model_validate(page)
    assert sorted(i["item_id"] for i in page["items"]) == ["i00", "i01", "i02"]
    scores = [i["score"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True)


def test_rank_keeps_unknown_ids_at_the_end_of_the_list(call: Call) -> None:
    # Given a list with two ids the catalogue does not know among known ones
    ids = ["gone-1", "i02", "i01", "gone-2", "i00", "gone-1"]
    # When it is ranked
    status, page = call(
        "ranking", "POST", "/users/{user_id}/rank", "/users/u000/rank", body={"item_ids": ids},
        params={"user_id": "u000"},
    )  # fmt: skip
    # Then the known ones come first, best first, and the unknown ones after them, once each
    assert status == 200
    RecommendationPage.model_validate(page)
    assert sorted(i["item_id"] for i in page["items"][:3]) == ["i00", "i01", "i02"]
    assert [(i["item_id"], i["reason"]) for i in page["items"][3:]] == [
        ("gone-1", "unknown item"),
        ("gone-2", "unknown item"),
    ]
    # And k cuts the unknown ones first; a list of unknown ids alone is still a 200
    status, cut = call(
        "ranking", "POST", "/users/{user_id}/rank", "/users/u000/rank", body={"item_ids": ids, "k": 4},
        params={"user_id": "u000"},
    )  # fmt: skip
    assert status == 200 and [i["item_id"] for i in cut["items"]][3:] == ["gone-1"]
    status, alone = call(
        "ranking", "POST", "/users/{user_id}/rank", "/users/u000/rank", body={"item_ids": ["gone-9"]},
        params={"user_id": "u000"},
    )  # fmt: skip
    assert status == 200 and [i["reason"] for i in alone["items"]] == ["unknown item"]


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


def test_bought_together_lists_basket_neighbours_in_stock(call: Call, model_dir: Path) -> None:
    status, page = call(*TOGETHER, "k=5", params={"item_id": "i00"})
    assert status == 200 and page["surface"] == "bought-together"
    RecommendationPage.model_validate(page)
    ids = [i["item_id"] for i in page["items"]]
    assert "i00" not in ids and 0 < len(ids) <= 5
    assert {i["source"] for i in page["items"]} <= {"bought_together", "also_viewed"}


def test_trending_comes_from_live_counters_then_the_model(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    # Given no counters yet: the model's trending signal answers
    status, before = call(*POPULAR, "k=3&window=24")
    assert status == 200 and {i["source"] for i in before["items"]} == {"trending"}
    # When the event processor has counted views of i44 in the current hour
    from datetime import UTC, datetime

    from merchandiser.store import bucket_key
    from merchandiser.stream import TrendingCompactor

    store = FeatureStore(aws.dynamodb, "users", "sessions", counters_table="counters")
    store.add_counts({(bucket_key(datetime.now(UTC)), "i44"): 50.0}, expires_at=1_900_000_000, token="e1")
    # and the compactor has summarised the hour
    TrendingCompactor(store).run()
    status, after = call(*POPULAR, "k=3&window=24")
    # Then the live counts lead
    assert status == 200 and after["items"][0]["item_id"] == "i44" and after["degraded"] is False


def test_a_new_shopper_gets_the_popularity_of_their_country(call: Call) -> None:
    # The tiny shop's south favours the other end of each category than the north
    _, north = recommendations(call, "stranger", "k=10&country=north")
    _, south = recommendations(call, "stranger", "k=10&country=south")
    assert [i["item_id"] for i in north["items"]] != [i["item_id"] for i in south["items"]]
    # and without a country the page is the plain one
    _, nowhere = recommendations(call, "stranger", "k=10")
    assert nowhere["items"] != north["items"] or nowhere["items"] != south["items"]


def test_session_items_give_reasons_and_an_upserted_item_is_served(call: Call, aws) -> None:  # type: ignore[no-untyped-def]
    # Given a shopper who just viewed hats
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    events = [SessionEvent(f"e{n}", f"i0{n * 3 + 1}", "view", 1.0, 1_800_000_000.0 + n) for n in range(3)]
    store.append_session("newcomer", events, [], expires_at=1_900_000_000)
    # Then some of the page is explained by what they viewed
    _, page = recommendations(call, "newcomer", "k=20")
    reasons = [i["reason"] for i in page["items"]]
    assert any(r.startswith(("because you viewed Item", "bought with Item")) for r in reasons)
    # When the retailer adds a new hat
    status, stored = call(
        "catalog",
        "PUT",
        "/items/{item_id}",
        "/items/hat-2027",
        body={"title": "Item 1 hats new", "category": "hats", "price": 11.0},
        params={"item_id": "hat-2027"},
    )
    assert status == 200 and stored["retrievable"] is True
    runtime.reset()  # a new container: the overlay is read at once instead of after its TTL
    # Then the hat shopper's candidates include it, placed by its attributes
    status, candidates = call(
        "retrieval",
        "GET",
        "/users/{user_id}/candidates",
        "/users/newcomer/candidates",
        "k=200",
        params={"user_id": "newcomer"},
    )
    assert status == 200 and "hat-2027" in {i["item_id"] for i in candidates["items"]}


def test_similar_items_blend_with_a_shoppers_taste(call: Call, model_dir: Path) -> None:
    # Given a hats shopper (user 1 % 3) asking for items similar to a pair of shoes
    profile = next(p for p in user_profiles(model_dir) if p["user_id"] == "u001")
    plain_status, plain = call(*SIMILAR, "k=10", params={"item_id": "i00"})
    status, blended = call(*SIMILAR, "k=10&user_id=u001", params={"item_id": "i00"})
    assert plain_status == status == 200 and blended["personalized"] is True
    # Then the page leans to hats, leaves out the shopper's purchases and the item itself
    hats = sum(i["category"] == "hats" for i in blended["items"])
    assert hats > sum(i["category"] == "hats" for i in plain["items"])
    ids = {i["item_id"] for i in blended["items"]}
    assert "i00" not in ids and not ids & set(profile["purchased"])


def test_similar_and_popular(call: Call) -> None:
    status, similar = call(
        "retrieval", "GET", "/items/{item_id}/similar", "/items/i00/similar", "k=5", params={"item_id": "i00"}
    )
    assert (
        status == 200 and len(similar["items"]) == 5 and "i00" not in {i["item_id"] for i in similar["items"]}
    )
    status, popular = call("retrieval", "GET", "/items/popular", "/items/popular", "k=3&category=shoes")
    assert status == 200 and {i["category"] for i in popular["items"]} == {"shoes"}
    RecommendationPage.model_validate(similar)
    RecommendationPage.model_validate(popular)


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


def test_health_reports_the_loaded_model(call: Call) -> None:
    status, health = call("retrieval", "GET", "/health", "/health")
    assert status == 200
    Health.model_validate(health)


def rerank(call: Call, user: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return call(
        "reranking",
        "POST",
        "/users/{user_id}/rerank",
        f"/users/{user}/rerank",
        body=body,
        params={"user_id": user},
    )


SCORED = [{"item_id": f"i{n:02d}", "score": 1.0 - n / 100} for n in range(20)]


def test_rerank_places_promoted_and_new_items_and_honours_exclusions(call: Call) -> None:
    body = {
        "items": SCORED,
        "k": 10,
        "rules": {
            "exclude_categories": ["hats"],
            "exclude_item_ids": ["i00"],
            "promoted_item_ids": ["i04", "i39"],  # i04 is a hat: excluded, so only i39 is placed
            "promoted_share": 0.2,
            "explore_item_ids": ["i41", "i42", "i43"],  # i43 is a hat
            "explore_slots": 1,
            "seed": "page-view-1",
        },
    }
    status, page = rerank(call, "stranger", body)
    assert status == 200
    RecommendationPage.model_validate(page)
    reasons = [i["reason"] for i in page["items"]]
    # promoted at every 5th slot (only one eligible), the new item in the middle slot that is free
    assert page["items"][4]["item_id"] == "i39" and reasons[4] == "promoted"
    assert reasons[5] == "new arrival" and page["items"][5]["item_id"] in {"i41", "i42"}
    assert reasons.count("promoted") == 1 and reasons.count("new arrival") == 1
    assert not {i["category"] for i in page["items"]} & {"hats"}
    assert "i00" not in {i["item_id"] for i in page["items"]}
    # the same request gives the same page
    assert rerank(call, "stranger", body)[1]["items"] == page["items"]


def test_rerank_mmr_with_lambda_one_keeps_the_score_order(call: Call) -> None:
    status, plain = rerank(call, "stranger", {"items": SCORED, "k": 10, "rules": {"mmr_lambda": 1.0}})
    assert status == 200
    assert [i["item_id"] for i in plain["items"]] == [f"i{n:02d}" for n in range(10)]
    status, diverse = rerank(call, "stranger", {"items": SCORED, "k": 10, "rules": {"mmr_lambda": 0.2}})
    assert status == 200 and diverse["items"][0]["item_id"] == "i00"
    assert {i["item_id"] for i in diverse["items"]} <= {i["item_id"] for i in SCORED}


def test_recommendations_follow_the_retailers_rules(
    call: Call, monkeypatch: pytest.MonkeyPatch, model_dir: Path
) -> None:
    rules = {"promoted_item_ids": ["i42"], "promoted_share": 0.2, "exclude_categories": ["bags"]}
    monkeypatch.setenv("MERCHANDISING_RULES", json.dumps(rules))
    status, page = recommendations(call, "u001", "k=10")
    assert status == 200
    assert page["items"][4]["item_id"] == "i42" and page["items"][4]["reason"] == "promoted"
    assert "bags" not in {i["category"] for i in page["items"]}


def test_a_retailer_can_let_the_session_items_onto_the_page(
    call: Call, monkeypatch: pytest.MonkeyPatch, aws
) -> None:  # type: ignore[no-untyped-def]
    # Given a shopper who just viewed three hats, and a retailer whose shoppers buy what they just viewed
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    events = [SessionEvent(f"e{n}", f"i0{n * 3 + 1}", "view", 1.0, 1_800_000_000.0 + n) for n in range(3)]
    store.append_session("viewer", events, [], expires_at=1_900_000_000)
    viewed = {"i01", "i04", "i07"}
    _, default = recommendations(call, "viewer", "k=30")
    monkeypatch.setenv("MERCHANDISING_RULES", json.dumps({"show_session_items": True}))
    _, shown = recommendations(call, "viewer", "k=30")
    # Then by default the viewed hats stay off the page, with the rule they may be on it
    assert not {i["item_id"] for i in default["items"]} & viewed
    assert {i["item_id"] for i in shown["items"]} & viewed


def test_new_items_get_exploration_slots_on_the_home_page(aws, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    # Given a catalogue where three shoes arrived yesterday and nobody has interacted with them
    served = runtime.model(str(model_dir))
    items = copy.copy(served.items)
    new = [items.catalog.row_of[item] for item in ("i03", "i06", "i09")]
    items.popularity = items.popularity.copy()
    items.popularity[new] = 0.0
    created = items.catalog.created_at.copy()
    created[new] = START.timestamp() + 86_400
    items.catalog = replace(items.catalog, created_at=created)
    model = Model(items, served.ranker)
    store = FeatureStore(aws.dynamodb, "users", "sessions", "items")

    def page(user: str, day: int) -> list[dict[str, Any]]:
        # the uniform choice keeps the day's seed (Thompson sampling draws per recommendation id: unit tests)
        recommender = Recommender(
            model=model,
            store=store,
            clock=lambda: START.timestamp() + day * 86_400,
            merchandising=RetailerRules(explore_policy="uniform"),
        )
        return recommender.recommend(user, k=10)["items"]

    # When a shopper opens the home page: one slot in ten (the 6th) is a new arrival
    first = page("u001", day=2)
    assert [i["reason"] for i in first].count("new arrival") == 1
    assert first[5]["reason"] == "new arrival" and first[5]["item_id"] in {"i03", "i06", "i09"}
    # Then the same shopper sees the same page that day, and others see other new items
    assert page("u001", day=2) == first
    assert len({page(f"u{n:03d}", day=2)[5]["item_id"] for n in range(12)}) > 1
    # And after new_item_days (30) the items are no longer new
    assert "new arrival" not in {i["reason"] for i in page("u001", day=40)}


def test_an_unknown_promoted_item_in_a_rerank_is_a_404(call: Call) -> None:
    status, answer = rerank(call, "u1", {"items": SCORED, "rules": {"promoted_item_ids": ["nope"]}})
    assert status == 404 and "nope" in answer["message"]


RECOMMENDATIONS = ("retrieval", "GET", "/users/{user_id}/recommendations", "/users/u1/recommendations")
CANDIDATES = ("retrieval", "GET", "/users/{user_id}/candidates", "/users/u1/candidates")
SIMILAR = ("retrieval", "GET", "/items/{item_id}/similar", "/items/i00/similar")
POPULAR = ("retrieval", "GET", "/items/popular", "/items/popular")
TOGETHER = ("retrieval", "GET", "/items/{item_id}/bought-together", "/items/i00/bought-together")
RANK = ("ranking", "POST", "/users/{user_id}/rank", "/users/u1/rank")
RERANK = ("reranking", "POST", "/users/{user_id}/rerank", "/users/u1/rerank")
EVENTS = ("events_api", "POST", "/events", "/events")
PUT_ITEM = ("catalog", "PUT", "/items/{item_id}", "/items/x1")
ERASE = ("catalog", "DELETE", "/users/{user_id}", "/users/u1")
ONE = [{"item_id": "i00", "score": 1.0}]
EVENT = {"user_id": "u1", "item_id": "i00", "event_type": "view"}
BAD_INPUT: list[tuple[str, str, str, str, str, Any, int]] = [
    # (function, method, resource, path), query, body, status
    (*RECOMMENDATIONS, "k=0", None, 422),
    (*RECOMMENDATIONS, "k=101", None, 422),
    (*RECOMMENDATIONS, "k=x", None, 422),
    (*RECOMMENDATIONS, "surface=checkout", None, 422),
    (*RECOMMENDATIONS, "category=" + "c" * 129, None, 422),
    ("retrieval", "GET", "/users/{user_id}/recommendations", "/users/-u1/recommendations", "", None, 422),
    (*CANDIDATES, "k=0", None, 422),
    (*CANDIDATES, "k=1001", None, 422),
    ("retrieval", "GET", "/items/{item_id}/similar", "/items/nope/similar", "", None, 404),
    (*SIMILAR, "k=0", None, 422),
    (*SIMILAR, "k=2.5", None, 422),
    (*SIMILAR, "user_id=no%20spaces", None, 422),
    (*POPULAR, "k=abc", None, 422),
    (*POPULAR, "window=0", None, 422),
    (*POPULAR, "window=169", None, 422),
    ("retrieval", "GET", "/items/{item_id}/bought-together", "/items/nope/bought-together", "", None, 404),
    (*TOGETHER, "k=0", None, 422),
    (*RECOMMENDATIONS, "country=" + "x" * 65, None, 422),
    (*RECOMMENDATIONS, "device=<script>", None, 422),
    (*POPULAR, "k=101", None, 422),
    (*RANK, "", b"{", 400),
    (*RANK, "", b"", 422),
    (*RANK, "", [], 422),
    (*RANK, "", {"item_ids": "i00"}, 422),
    (*RANK, "", {"item_ids": []}, 422),
    (*RANK, "", {"item_ids": ["i00"] * 1001}, 422),
    (*RANK, "", {"item_ids": ["i00"], "k": 0}, 422),
    (*RANK, "", {"item_ids": ["i00"], "extra": 1}, 422),
    (*RANK, "", {"item_ids": ["bad id"]}, 422),
    (*RERANK, "", {"items": [{"item_id": "i00"}]}, 422),
    (*RERANK, "", b"{", 400),
    (*RERANK, "", {"items": [{"item_id": "nope", "score": 1.0}]}, 404),
    (*RERANK, "", {"items": [{"item_id": "i00", "score": "high"}]}, 422),
    (*RERANK, "", b'{"items": [{"item_id": "i00", "score": NaN}]}', 422),
    (*RERANK, "", b'{"items": [{"item_id": "i00", "score": Infinity}]}', 422),
    (*RERANK, "", {"items": ONE * 1001}, 422),
    (*RERANK, "", {"items": [{"item_id": "i00", "score": 1e300}]}, 422),
    (*RERANK, "", {"items": ONE, "k": 101}, 422),
    (*RERANK, "", {"items": ONE, "rules": {"mmr_lambda": 2}}, 422),
    (*RERANK, "", {"items": ONE, "rules": {"promoted_share": 0.9}}, 422),
    (*RERANK, "", {"items": ONE, "rules": {"explore_slots": -1}}, 422),
    (*RERANK, "", {"items": ONE, "rules": {"explore_item_ids": ["nope"]}}, 404),
    (*RERANK, "", {"items": ONE, "rules": {"boost": True}}, 422),
    (*RERANK, "", {"items": ONE, "rules": {"exclude_item_ids": "i00"}}, 422),
    ("experiments", "PUT", "/experiments/{name}", "/experiments/e1", "", b"{", 400),
    ("experiments", "PUT", "/experiments/{name}", "/experiments/e1", "", [], 422),
    (
        "experiments",
        "PUT",
        "/experiments/{name}",
        "/experiments/e1",
        "",
        {"name": "e1", "surfaces": ["home"]},
        422,
    ),
    ("experiments", "PUT", "/experiments/{name}", "/experiments/Bad%20Name", "", {"name": "x"}, 422),
    ("experiments", "GET", "/experiments/{name}", "/experiments/nobody", "", None, 404),
    ("experiments", "DELETE", "/experiments/{name}", "/experiments/nobody", "", None, 404),
    ("experiments", "GET", "/experiments/{name}/report", "/experiments/nobody/report", "", None, 404),
    (*EVENTS, "", b"{", 400),
    (*EVENTS, "", {"events": []}, 422),
    (*EVENTS, "", {"events": [EVENT] * 501}, 422),
    (*EVENTS, "", {"events": [{**EVENT, "event_type": "hover"}]}, 422),
    (*EVENTS, "", {"events": [{**EVENT, "user_id": 7}]}, 422),
    (*EVENTS, "", {"events": [{**EVENT, "price": 1e300}]}, 422),
    (
        *EVENTS,
        "",
        b'{"events": [{"user_id": "u1", "item_id": "i00", "event_type": "view", "price": Infinity}]}',
        422,
    ),
    (*PUT_ITEM, "", {"title": ""}, 422),
    (*PUT_ITEM, "", {}, 422),  # a partial update names at least one field
    (*PUT_ITEM, "", {"in_stock": None}, 422),  # null removes nothing: it is no field
    (*PUT_ITEM, "", {"colour": "red"}, 422),
    (*PUT_ITEM, "", {"title": "Hat", "price": -1}, 422),
    (*PUT_ITEM, "", {"title": "Hat", "in_stock": "maybe"}, 422),
    (*PUT_ITEM, "", {"title": "Hat", "price": 1e300}, 422),
    (*PUT_ITEM, "", {"title": "Hat", "price": 3.8e300}, 422),
    (*PUT_ITEM, "", b'{"title": "Hat", "price": NaN}', 422),
    (*PUT_ITEM, "", b"{", 400),
    ("catalog", "PUT", "/items/{item_id}", "/items/-x1", "", {"title": "Hat"}, 422),
    ("catalog", "DELETE", "/users/{user_id}", "/users/-u1", "", None, 422),
    ("catalog", "PUT", "/items/{item_id}", "/items/i00", "", {"title": "Hat", "promoted": "maybe"}, 422),
    ("retrieval", "GET", "/users/{user_id}/events", "/users/-u1/events", "", None, 422),
    ("retrieval", "GET", "/items", "/items", "k=0", None, 422),
    ("retrieval", "GET", "/items", "/items", "k=101", None, 422),
    ("retrieval", "GET", "/items", "/items", "q=" + "x" * 129, None, 422),
    ("retrieval", "GET", "/items", "/items", "new=perhaps", None, 422),
]


@pytest.mark.parametrize(("function", "method", "resource", "path", "query", "body", "status"), BAD_INPUT)
def test_bad_input_is_a_4xx_with_a_message(
    call: Call, function: str, method: str, resource: str, path: str, query: str, body: Any, status: int
) -> None:
    match = Route(method, resource, function).pattern.match(path)
    assert match is not None
    code, answer = call(function, method, resource, path, query, body, match.groupdict())
    assert code == status, answer
    ErrorBody.model_validate(answer)
    assert answer["error"] and answer["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "Multipart/Form-Data; x=1"])
def test_a_body_in_another_media_type_is_a_415_not_a_500(call: Call, content_type: str) -> None:
    from lambdas.ranking import handler as ranking

    route = Route("POST", "/users/{user_id}/rank", "ranking")
    event = proxy_event(
        "POST", route, "/users/u1/rank", {"user_id": "u1"}, "", {"Content-Type": content_type}, b'{"a": 1}'
    )
    response = ranking.handler(event, LambdaContext("ranking"))
    assert response["statusCode"] == 415
    assert ErrorBody.model_validate_json(response["body"]).error == "UNSUPPORTED_MEDIA_TYPE"


def test_every_route_has_bad_input_cases() -> None:
    covered = {(method, resource) for _, method, resource, *_ in BAD_INPUT}
    # nothing a caller can get wrong (the 404 of GET /kpis is in test_staff_routes.py)
    no_input = {("GET", "/health"), ("GET", "/experiments")} | {
        ("GET", "/model"), ("GET", "/events/stats"), ("GET", "/kpis"),
    }  # fmt: skip
    assert covered | no_input == {(method, path) for method, path, _ in API_ROUTES}
