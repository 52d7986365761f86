"""The API's OpenAPI 3.1 document, generated from every API function's resolver.

    python -m lambdas.openapi --write   # regenerate lambdas/openapi.json after changing a route
    python -m lambdas.openapi --check   # exit 1 when the committed document is stale

Each function has its own resolver (``api.make_resolver``); their documents are merged into one.
It lives beside the handlers, not in the core library, because it imports them (the core library
never imports a handler). Importing a handler builds no client and reads no file.
"""

import argparse
import importlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from stacks.constants import API_KEY, IAM, OPEN, ROUTE_ACCESS

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = REPO_ROOT / "lambdas" / "openapi.json"
REGENERATE = "python -m lambdas.openapi --write"
SCHEMA_REF = "#/components/schemas/"

# The functions behind API Gateway (stacks/constants.py API_ROUTES): their handler modules.
API_FUNCTIONS = ("retrieval", "ranking", "reranking", "events_api", "catalog", "experiments")
TITLE = "Merchandiser API"
DESCRIPTION = (
    "Recommendations, ranking, business rules, behaviour events, catalogue upserts and experiments of a"
    ' Merchandiser deployment. Errors are `{"error": CODE, "message": TEXT}`: 4xx for the caller\'s fault,'
    " 500 for ours (logged, never leaking internals). Every recommendation response carries"
    " `recommendation_id`, `model_version`, the `experiment` and its `variant` and, per item, `item_id`,"
    " `score` and `reason`."
    " Storefront routes need the storefront's API key (`x-api-key`, security scheme `api_key`); admin"
    " routes (catalogue writes, erasure, experiments) are IAM-authorized: SigV4-signed for `execute-api`"
    " (`sigv4`). API Gateway refuses a request without them with 403 (never 401) before any function runs,"
    " and throttles with 429 (stage limits; the usage plan's rate, burst and daily quota)."
)
# How API Gateway (stacks/serving_stack.py) authorizes each route, in OpenAPI's words.
SECURITY_SCHEMES = {
    "api_key": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The storefront's API key, in the API Gateway usage plan (rate, burst, daily quota)",
    },
    "sigv4": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "x-amazon-apigateway-authtype": "awsSigv4",
        "description": "AWS Signature Version 4 for execute-api (IAM authorization), with X-Amz-Date",
    },
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {API_KEY: [{"api_key": []}], IAM: [{"sigv4": []}], OPEN: []}
# Answers every route can give besides its function's own: API Gateway's refusals and limits, the twin's
# 405, and the resolver's 415 for a body in another media type.
GATEWAY_ANSWERS = {
    "403": "FORBIDDEN: API Gateway's refusal before any function runs: the x-api-key is missing or not an"
    " enabled key of this API, or an admin route's request is not SigV4-signed",
    "404": "NOT_FOUND: an unknown item id, or no such route (e.g. an empty path parameter)",
    "405": "METHOD_NOT_ALLOWED: a method this path does not declare, on the local twin (API Gateway itself"
    " answers 403 MissingAuthenticationToken)",
    "413": "PAYLOAD_TOO_LARGE: a body over API Gateway's 6 MB",
    "415": "UNSUPPORTED_MEDIA_TYPE: a body that is neither JSON nor a form",
    "429": "TOO_MANY_REQUESTS: stage throttling, or the storefront usage plan's rate, burst or daily quota",
}


class MergeError(Exception):
    """Two functions declare the same route, or the same schema name with different content."""


def version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def function_document(function: str) -> dict[str, Any]:
    handler = importlib.import_module(f"lambdas.{function}.handler")
    document: dict[str, Any] = json.loads(handler.app.get_openapi_json_schema(title=TITLE, version=version()))
    return document


def merge(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document from each function's: paths and component schemas united, conflicts refused."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for function, document in documents.items():
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method in paths.get(path, {}):
                    raise MergeError(f"{method.upper()} {path} is declared by two functions")
                paths.setdefault(path, {})[method] = {**operation, "x-merchandiser-function": function}
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise MergeError(f"schema {name} differs between functions; give one of them another name")
            schemas[name] = schema
    reachable = referenced(paths, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": version(), "description": DESCRIPTION},
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {"schemas": {name: schemas[name] for name in sorted(reachable)}},
    }


def referenced(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """The schema names the paths use, directly or through other schemas.

    Powertools adds its validation-error schemas to every document, but no route of this API answers
    with them (``api.documented`` replaces its 422): unreferenced schemas would only mislead.
    """
    found: set[str] = set()
    pending = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
                name = ref[len(SCHEMA_REF) :]
                if name not in found:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def with_gateway(spec: dict[str, Any]) -> dict[str, Any]:
    """The security schemes, each operation's security and the statuses API Gateway adds to it."""
    error = {"content": {"application/json": {"schema": {"$ref": f"{SCHEMA_REF}ErrorBody"}}}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            access = ROUTE_ACCESS.get((method.upper(), path))
            if access is None:
                raise MergeError(f"{method.upper()} {path} has no entry in stacks/constants.py ROUTE_ACCESS")
            operation["security"] = SECURITY[access]
            answers = {"404", "405", "429"} | ({"403"} if access != OPEN else set())
            answers |= {"413", "415"} if "requestBody" in operation else set()
            for status in sorted(answers):
                operation["responses"].setdefault(status, {"description": GATEWAY_ANSWERS[status], **error})
    spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    return spec


def document() -> dict[str, Any]:
    return with_gateway(merge({function: function_document(function) for function in API_FUNCTIONS}))


def render(spec: dict[str, Any]) -> str:
    # sorted keys and a final newline: the committed file changes only when the API does
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write lambdas/openapi.json")
    action.add_argument("--check", action="store_true", help="exit 1 if the committed document is stale")
    args = parser.parse_args(argv)
    text = render(document())
    if args.write:
        DOCUMENT.write_text(text)
        print(f"wrote {shown(DOCUMENT)}")
    elif args.check:
        if not DOCUMENT.is_file() or DOCUMENT.read_text() != text:
            print(f"{shown(DOCUMENT)} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
