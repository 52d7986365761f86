"""The twin's credentials check, method by method, without a twin: keys, SigV4 shapes, refusals."""

from __future__ import annotations

import json

import pytest

from local_twin.api_client import region_of, sigv4_headers
from local_twin.gateway_auth import GatewayAuth, MethodAccess, method_access

URL = "http://127.0.0.1:8080/v1/items/i1"
ACCESS = {
    ("GET", "/items/popular"): MethodAccess(api_key_required=True, authorization_type="NONE"),
    ("PUT", "/items/{item_id}"): MethodAccess(api_key_required=False, authorization_type="AWS_IAM"),
    ("GET", "/health"): MethodAccess(api_key_required=False, authorization_type="NONE"),
}


class KeyStore:
    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)
        self.reads = 0

    def __call__(self) -> frozenset[str]:
        self.reads += 1
        return frozenset(self.keys)


def signed_headers() -> dict[str, str]:
    return sigv4_headers("PUT", URL, b'{"title": "Mug"}', {"Content-Type": "application/json"})


def message(refusal: tuple[int, dict[str, str], bytes] | None) -> str:
    assert refusal is not None
    status, headers, body = refusal
    assert status == 403 and headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == "FORBIDDEN"
    return str(answer["message"])


def test_a_key_route_lets_an_enabled_key_through_and_refuses_others() -> None:
    auth = GatewayAuth(ACCESS, KeyStore("k" * 40))
    assert auth.check("GET", "/items/popular", {"X-Api-Key": "k" * 40}) is None  # header names in any case
    assert "x-api-key header" in message(auth.check("GET", "/items/popular", {}))
    assert "not an enabled API key" in message(auth.check("GET", "/items/popular", {"x-api-key": "nope"}))


def test_a_key_created_after_start_is_read_on_first_use() -> None:
    keys = KeyStore()
    auth = GatewayAuth(ACCESS, keys)
    keys.keys.add("late-key-0123456789abcd")
    assert auth.check("GET", "/items/popular", {"x-api-key": "late-key-0123456789abcd"}) is None
    assert keys.reads == 2


def test_an_iam_route_takes_a_botocore_signature() -> None:
    auth = GatewayAuth(ACCESS, KeyStore())
    assert auth.check("PUT", "/items/{item_id}", signed_headers()) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"Authorization": None}, "Missing Authentication Token"),
        ({"Authorization": "Bearer abc"}, "Invalid signature"),
        ({"X-Amz-Date": None}, "X-Amz-Date"),
        ({"X-Amz-Date": "20200101T000000Z"}, "date"),
        ({"X-Amz-Date": "yesterday"}, "X-Amz-Date"),
    ],
)
def test_an_iam_route_refuses_a_missing_or_malformed_signature(
    change: dict[str, str | None], expected: str
) -> None:
    headers = {**signed_headers(), "x-api-key": "k" * 40}  # the storefront's key does not stand in for IAM
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    assert expected in message(
        GatewayAuth(ACCESS, KeyStore("k" * 40)).check("PUT", "/items/{item_id}", headers)
    )


def test_a_signature_for_another_service_or_without_signed_host_is_refused() -> None:
    headers = signed_headers()
    auth = GatewayAuth(ACCESS, KeyStore())
    other_service = {**headers, "Authorization": headers["Authorization"].replace("/execute-api/", "/s3/")}
    assert "Invalid signature" in message(auth.check("PUT", "/items/{item_id}", other_service))
    unsigned_host = {**headers, "Authorization": headers["Authorization"].replace("host;", "")}
    assert "SignedHeaders" in message(auth.check("PUT", "/items/{item_id}", unsigned_host))


def test_an_open_route_needs_nothing_and_an_undeclared_one_is_refused() -> None:
    auth = GatewayAuth(ACCESS, KeyStore())
    assert auth.check("GET", "/health", {}) is None
    assert "Missing Authentication Token" in message(auth.check("POST", "/health", {}))


def test_an_authorizer_the_twin_cannot_emulate_stops_it() -> None:
    class RestApi:
        def get_resources(self, **_: object) -> dict[str, object]:
            methods = {"GET": {"authorizationType": "COGNITO_USER_POOLS", "apiKeyRequired": False}}
            return {"items": [{"path": "/x", "resourceMethods": methods}]}

    with pytest.raises(ValueError, match="COGNITO_USER_POOLS"):
        method_access(RestApi(), "api")


def test_the_region_comes_from_an_execute_api_url() -> None:
    assert region_of("https://abc123.execute-api.eu-west-3.amazonaws.com/v1/health") == "eu-west-3"
    assert region_of(URL) == "us-east-1"
