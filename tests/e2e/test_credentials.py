"""The twin enforces what the stack declares: the storefront's key on shopper routes, SigV4 on admin ones."""

from __future__ import annotations

from typing import Any

import pytest

from local_twin import api_client
from local_twin.twin import Twin
from stacks.constants import API_KEY, API_ROUTES, IAM, OPEN, ROUTE_ACCESS
from tests.e2e.conftest import api, twin_item

pytestmark = pytest.mark.slow

ROUTES = [(method, resource) for method, resource, _ in API_ROUTES]


# Stopped: it exists for the experiment routes, and no shopper of the shared twin is assigned to it.
EXPERIMENT = {
    "name": "cred-check", "surfaces": ["rank"], "status": "stopped",
    "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "policy": "popularity"}],
}  # fmt: skip


def valid_request(twin: Twin, method: str, resource: str) -> tuple[str, Any]:
    """A path and a body each route accepts with a 2xx."""
    item = twin_item(twin)
    path = resource.replace("{user_id}", "u-cred").replace("{item_id}", item)
    path = path.replace("{name}", EXPERIMENT["name"])
    if "{name}" in resource:  # the experiment the route reads or stops exists
        stored = api_client.send("PUT", f"{api(twin)}/experiments/cred-check", EXPERIMENT, signed=True)
        assert stored.status == 200, stored.body
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/users/{user_id}/rank"): {"item_ids": [item]},
        ("POST", "/users/{user_id}/rerank"): {"items": [{"item_id": item, "score": 1.0}]},
        ("POST", "/events"): {"events": [{"user_id": "u-cred", "item_id": item, "event_type": "view"}]},
        ("PUT", "/items/{item_id}"): {"title": "Credential Check Mug", "category": "kitchen"},
        ("PUT", "/experiments/{name}"): EXPERIMENT,
    }
    return f"{api(twin)}{path}", bodies.get((method, resource))


@pytest.mark.parametrize(("method", "resource"), ROUTES)
def test_without_credentials_every_route_but_health_is_forbidden(
    twin: Twin, method: str, resource: str
) -> None:
    # Given a request the route would accept, When it carries no key and no signature
    url, body = valid_request(twin, method, resource)
    answer = api_client.send(method, url, body)
    # Then API Gateway's refusal: 403 with the JSON error body (the open health check answers)
    if ROUTE_ACCESS[(method, resource)] == OPEN:
        assert answer.status == 200
        return
    assert answer.status == 403, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"] == "FORBIDDEN" and answer.json()["message"]


@pytest.mark.parametrize(("method", "resource"), ROUTES)
def test_with_its_credentials_every_route_answers(twin: Twin, method: str, resource: str) -> None:
    # Given the storefront's key, and a SigV4 signature on admin routes
    url, body = valid_request(twin, method, resource)
    signed = ROUTE_ACCESS[(method, resource)] == IAM
    # When called, Then the route's function answers with a 2xx and JSON
    answer = api_client.send(method, url, body, api_key=twin.api_key, signed=signed)
    assert answer.status in (200, 202), answer.body
    assert answer.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("route", [route for route in ROUTES if ROUTE_ACCESS[route] == IAM])
def test_the_storefront_key_alone_does_not_open_an_admin_route(twin: Twin, route: tuple[str, str]) -> None:
    url, body = valid_request(twin, *route)
    answer = api_client.send(route[0], url, body, api_key=twin.api_key)
    assert answer.status == 403 and "SigV4" in answer.json()["message"]


@pytest.mark.parametrize("route", [route for route in ROUTES if ROUTE_ACCESS[route] == API_KEY])
def test_a_key_that_is_not_the_apis_is_forbidden(twin: Twin, route: tuple[str, str]) -> None:
    url, body = valid_request(twin, *route)
    answer = api_client.send(route[0], url, body, api_key="0123456789abcdef0123456789abcdef")
    assert answer.status == 403 and answer.json()["error"] == "FORBIDDEN"


def test_a_key_created_with_a_stock_client_works_at_once(twin: Twin) -> None:
    # Given a second storefront key created through moto's API Gateway, as `aws apigateway create-api-key`
    key = "second-storefront-key-0123456789"
    twin.client("apigateway").create_api_key(name="second-storefront", value=key, enabled=True)
    # When it is used, Then the twin accepts it without a restart
    status, _, _ = api_client.call("GET", f"{api(twin)}/items/popular?k=3", api_key=key)
    assert status == 200


def test_an_admin_route_refuses_a_malformed_signature(twin: Twin) -> None:
    url, body = valid_request(twin, "DELETE", "/users/{user_id}")
    for headers in (
        {"Authorization": "AWS4-HMAC-SHA256 Credential=bad", "X-Amz-Date": "20261130T000000Z"},
        {"Authorization": "Bearer token"},
    ):
        answer = api_client.send("DELETE", url, body, extra_headers=headers)
        assert answer.status == 403 and "Invalid signature" in answer.json()["message"], headers


def test_the_state_carries_the_key_and_the_key_is_in_api_gateway(twin: Twin) -> None:
    key = twin.state()["api_key"]
    assert key and len(key) >= 20
    listed = twin.client("apigateway").get_api_keys(includeValues=True)["items"]
    assert key in {item.get("value") for item in listed}
