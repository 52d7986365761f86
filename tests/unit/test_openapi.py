"""The committed OpenAPI document is the one the code generates, and it covers every deployed route."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

from lambdas import openapi
from stacks.constants import API_ROUTES
from tests.routes import ADMIN_ROUTES, OPEN_ROUTES

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def generated() -> dict[str, Any]:
    # function-scoped: it imports the handlers, whose Powertools objects read the environment that
    # the autouse (function-scoped) fixture sets; a module-scoped import would cache them without it
    return openapi.document()


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, by_method in spec["paths"].items()
        for method, operation in by_method.items()
        if method in METHODS
    }


def test_the_committed_document_is_not_stale(generated: dict[str, Any]) -> None:
    committed = openapi.DOCUMENT.read_text() if openapi.DOCUMENT.is_file() else ""
    assert committed == openapi.render(generated), (
        f"{openapi.DOCUMENT.name} is stale: a route, a request or a response model changed."
        f" Regenerate it with `{openapi.REGENERATE}` and commit the result."
    )


def test_every_deployed_route_is_documented_by_its_function(generated: dict[str, Any]) -> None:
    documented = {key: op["x-merchandiser-function"] for key, op in operations(generated).items()}
    deployed = {(method, path): function for method, path, function in API_ROUTES}
    missing = sorted(set(deployed) - set(documented))
    assert not missing, f"routes in stacks/constants.py API_ROUTES without a handler route: {missing}"
    assert documented == deployed, "a handler route that API Gateway does not expose, or in another function"


def test_the_document_is_valid_openapi_3_1_with_title_and_version(generated: dict[str, Any]) -> None:
    OpenAPI.model_validate(generated)
    assert generated["openapi"] == "3.1.0"
    assert generated["info"]["title"] == openapi.TITLE and generated["info"]["version"] == openapi.version()
    assert generated["info"]["description"]


def test_every_operation_documents_the_error_envelope_and_a_success_model(generated: dict[str, Any]) -> None:
    envelope = {"$ref": "#/components/schemas/ErrorBody"}
    for (method, path), operation in operations(generated).items():
        responses = operation["responses"]
        assert operation["summary"] != f"{method} {path}", f"{method} {path} has no summary"
        for code in ("422", "500"):
            assert responses[code]["content"]["application/json"]["schema"] == envelope, (method, path, code)
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path)
        assert "$ref" in responses[success[0]]["content"]["application/json"]["schema"], (method, path)
    # Powertools' own validation-error body is never sent by this API, so it is not documented
    assert not {"HTTPValidationError", "ValidationError"} & set(generated["components"]["schemas"])


def test_the_rerank_rules_are_documented(generated: dict[str, Any]) -> None:
    rules = generated["components"]["schemas"]["RerankRules"]["properties"]
    assert {"exclude_item_ids", "exclude_categories", "promoted_item_ids", "promoted_share"} <= set(rules)
    assert {"mmr_lambda", "explore_item_ids", "explore_slots", "seed"} <= set(rules)


def test_two_functions_declaring_one_route_are_refused() -> None:
    one: dict[str, Any] = {"paths": {"/a": {"get": {"responses": {}}}}}
    with pytest.raises(openapi.MergeError, match="GET /a"):
        openapi.merge({"f": one, "g": one})


def test_one_schema_name_with_two_shapes_is_refused() -> None:
    first = {"paths": {}, "components": {"schemas": {"Body": {"type": "object"}}}}
    second = {"paths": {}, "components": {"schemas": {"Body": {"type": "string"}}}}
    with pytest.raises(openapi.MergeError, match="Body"):
        openapi.merge({"f": first, "g": second})


def test_check_fails_on_a_stale_file_and_write_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(openapi, "DOCUMENT", tmp_path / "openapi.json")
    monkeypatch.setattr(openapi, "document", lambda: {"openapi": "3.1.0", "paths": {}})
    assert openapi.main(["--check"]) == 1  # missing
    assert openapi.REGENERATE in capsys.readouterr().err
    openapi.DOCUMENT.write_text("{}\n")
    assert openapi.main(["--check"]) == 1  # stale
    assert openapi.main(["--write"]) == 0
    assert openapi.main(["--check"]) == 0
    assert json.loads(openapi.DOCUMENT.read_text()) == {"openapi": "3.1.0", "paths": {}}
    capsys.readouterr()
    assert openapi.main([]) == 0  # no flag: the document on stdout
    assert json.loads(capsys.readouterr().out) == {"openapi": "3.1.0", "paths": {}}


def test_generating_the_document_calls_no_aws() -> None:
    # A fresh interpreter in which any boto3 client or resource fails: importing every handler and
    # generating the document must not need one.
    script = (
        "import boto3\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('AWS called while generating the OpenAPI document')\n"
        "boto3.client = boto3.resource = refuse\n"
        "boto3.session.Session.client = boto3.session.Session.resource = refuse\n"
        "from lambdas import openapi\n"
        "assert openapi.document()['paths']\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=openapi.REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_two_security_schemes_are_declared(generated: dict[str, Any]) -> None:
    schemes = generated["components"]["securitySchemes"]
    assert schemes["api_key"] == {**schemes["api_key"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert schemes["sigv4"]["name"] == "Authorization"


def test_each_operation_declares_its_security_and_every_status_it_can_answer(
    generated: dict[str, Any],
) -> None:
    for (method, path), operation in operations(generated).items():
        responses = set(operation["responses"])
        # Given who may call the route, Then its security and its refusals say so
        if (method, path) in ADMIN_ROUTES:
            assert operation["security"] == [{"sigv4": []}], (method, path)
        elif (method, path) in OPEN_ROUTES:
            assert operation["security"] == [] and "403" not in responses, (method, path)
        else:
            assert operation["security"] == [{"api_key": []}], (method, path)
        if (method, path) not in OPEN_ROUTES:
            assert "403" in responses, (method, path)
        assert {"404", "405", "422", "429", "500"} <= responses, (method, path)
        if "requestBody" in operation:
            assert {"413", "415"} <= responses, (method, path)


def test_a_route_without_an_access_entry_is_refused() -> None:
    spec: dict[str, Any] = {"paths": {"/secret": {"get": {"responses": {}}}}}
    with pytest.raises(openapi.MergeError, match="ROUTE_ACCESS"):
        openapi.with_gateway(spec)
