"""Who may call the API: the storefront's API key and usage plan, IAM for admin routes, JSON refusals."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from stacks import constants
from tests.infra.conftest import Synthesized
from tests.infra.test_stacks import ROUTES, _resource_paths
from tests.routes import ADMIN_ROUTES, OPEN_ROUTES

SERVING = "Merchandiser-Serving"


def methods_by_route(synthesized: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _resource_paths(synthesized.resources(SERVING, "AWS::ApiGateway::Resource"))
    return {
        (props["HttpMethod"], paths[props["ResourceId"]["Ref"]]): props
        for props in (
            m["Properties"] for m in synthesized.resources(SERVING, "AWS::ApiGateway::Method").values()
        )
    }


def test_every_declared_route_says_who_may_call_it() -> None:
    declared = {(method, path) for method, path, _ in constants.API_ROUTES}
    assert set(constants.ROUTE_ACCESS) == declared
    assert {
        route for route, access in constants.ROUTE_ACCESS.items() if access == constants.IAM
    } == ADMIN_ROUTES
    assert {
        route for route, access in constants.ROUTE_ACCESS.items() if access == constants.OPEN
    } == OPEN_ROUTES


def test_shopper_routes_need_the_api_key_and_admin_routes_iam(synthesized: Synthesized) -> None:
    methods = methods_by_route(synthesized)
    assert set(methods) == set(ROUTES)
    for route, props in methods.items():
        if route in ADMIN_ROUTES:
            assert props["AuthorizationType"] == "AWS_IAM", route
            assert not props.get("ApiKeyRequired", False), route  # a key alone must not open an admin route
        elif route in OPEN_ROUTES:
            assert props["AuthorizationType"] == "NONE" and not props.get("ApiKeyRequired", False), route
        else:
            assert props["AuthorizationType"] == "NONE" and props["ApiKeyRequired"] is True, route


def test_the_storefront_key_is_in_a_usage_plan_with_rate_burst_and_quota(synthesized: Synthesized) -> None:
    serving = Template.from_json(synthesized.templates[SERVING])
    serving.resource_count_is("AWS::ApiGateway::ApiKey", 1)
    serving.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": constants.USAGE_PLAN_RATE, "BurstLimit": constants.USAGE_PLAN_BURST},
            "Quota": {"Limit": constants.USAGE_PLAN_QUOTA_PER_DAY, "Period": "DAY"},
            "ApiStages": [Match.object_like({"Stage": Match.any_value(), "ApiId": Match.any_value()})],
        },
    )
    serving.has_resource_properties("AWS::ApiGateway::UsagePlanKey", {"KeyType": "API_KEY"})
    # the key's value is never in a template or an output: only its id
    assert "Value" not in json.dumps(synthesized.resources(SERVING, "AWS::ApiGateway::ApiKey"))
    assert "StorefrontApiKeyId" in synthesized.templates[SERVING]["Outputs"]


def test_api_gateway_refusals_use_the_json_error_envelope(synthesized: Synthesized) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synthesized.resources(SERVING, "AWS::ApiGateway::GatewayResponse").values()
    }
    for response_type, status in (
        ("INVALID_API_KEY", "403"), ("MISSING_AUTHENTICATION_TOKEN", "403"), ("INVALID_SIGNATURE", "403"),
        ("ACCESS_DENIED", "403"), ("THROTTLED", "429"), ("QUOTA_EXCEEDED", "429"),
    ):  # fmt: skip
        assert responses[response_type]["StatusCode"] == status, response_type
        body = responses[response_type]["ResponseTemplates"]["application/json"]
        assert body.startswith('{"error": "') and '"message": $context.error.messageString' in body
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
