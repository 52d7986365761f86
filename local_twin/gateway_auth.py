"""The twin's API Gateway credentials check: what each method of the RestApi in moto declares, enforced.

API Gateway refuses a request before any function runs: a method with ``apiKeyRequired`` needs the
``x-api-key`` of an enabled API key, a method with ``authorizationType`` ``AWS_IAM`` needs a SigV4-signed
request. Both settings are read per method from the RestApi that CloudFormation created in moto, so the
twin enforces exactly what the template declares. moto accepts any AWS credentials, so a signature is
checked for its shape (algorithm, credential scope for execute-api, signed headers, a 64-hex signature,
the X-Amz-Date it was made at), not recomputed. Refusals are 403 with the API's error envelope, as the
stack's gateway responses make API Gateway answer.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

API_KEY_HEADER = "x-api-key"
IAM = "AWS_IAM"
NONE = "NONE"
TWIN_KEY_NAME = "merchandiser-twin-storefront"
SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<access_key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/execute-api/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
AMZ_DATE = re.compile(r"^(?P<date>\d{8})T\d{6}Z$")
SIGV4_SHAPE = (
    "AWS4-HMAC-SHA256 Credential=ACCESS_KEY/YYYYMMDD/REGION/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date;..., Signature=64 hex digits"
)

Refusal = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class MethodAccess:
    api_key_required: bool
    authorization_type: str


def forbidden(message: str) -> Refusal:
    body = json.dumps({"error": "FORBIDDEN", "message": message}).encode()
    return 403, {"Content-Type": "application/json"}, body


def method_access(apigateway: Any, rest_api_id: str) -> dict[tuple[str, str], MethodAccess]:
    """(HTTP method, resource path) -> what the method requires, read from the RestApi in moto."""
    found = {}
    resources = apigateway.get_resources(restApiId=rest_api_id, embed=["methods"], limit=500)["items"]
    for resource in resources:
        for http_method, method in resource.get("resourceMethods", {}).items():
            authorization = method.get("authorizationType") or NONE
            if authorization not in (NONE, IAM):
                raise ValueError(
                    f"{http_method} {resource['path']}: the twin enforces API keys and IAM only, not "
                    f"authorizationType {authorization}"
                )
            required = bool(method.get("apiKeyRequired"))
            found[(http_method, resource["path"])] = MethodAccess(required, authorization)
    return found


def enabled_key_values(apigateway: Any) -> frozenset[str]:
    values: set[str] = set()
    for page in apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
        values.update(key["value"] for key in page.get("items", []) if key.get("enabled") and "value" in key)
    return frozenset(values)


def create_twin_api_key(apigateway: Any) -> str:
    """A random key for the storefront, created in moto's API Gateway as an enabled API key.

    The template's own key gets a value moto makes up; this one is the twin's to hand out (the state file's
    ``api_key``), and any stock client can see it with ``get-api-keys --include-values``.
    """
    value = secrets.token_hex(20)  # API Gateway wants at least 20 characters
    apigateway.create_api_key(name=TWIN_KEY_NAME, value=value, enabled=True)
    return value


class GatewayAuth:
    """``check(method, resource, headers)``: None when API Gateway would let the request through."""

    def __init__(
        self, access: Mapping[tuple[str, str], MethodAccess], read_keys: Callable[[], frozenset[str]]
    ) -> None:
        self._access = dict(access)
        self._read_keys = read_keys
        self._keys = read_keys()

    @classmethod
    def from_rest_api(cls, apigateway: Any, rest_api_id: str) -> GatewayAuth:
        return cls(method_access(apigateway, rest_api_id), lambda: enabled_key_values(apigateway))

    def check(self, method: str, resource: str, headers: Mapping[str, str]) -> Refusal | None:
        access = self._access.get((method, resource))
        if access is None:  # a route the RestApi does not declare: the front never routes it
            return forbidden(f"Missing Authentication Token: no method {method} {resource}")
        lower = {name.lower(): value for name, value in headers.items()}
        if access.authorization_type == IAM:
            refusal = self._check_signature(lower)
            if refusal is not None:
                return refusal
        if access.api_key_required:
            return self._check_api_key(lower.get(API_KEY_HEADER))
        return None

    def _check_api_key(self, presented: str | None) -> Refusal | None:
        if not presented:
            return forbidden("Forbidden: this route needs the storefront's API key in the x-api-key header")
        if presented not in self._keys:
            self._keys = self._read_keys()  # a key created since the twin started serving counts at once
            if presented not in self._keys:
                return forbidden("Forbidden: the x-api-key is not an enabled API key of this API")
        return None

    @staticmethod
    def _check_signature(headers: Mapping[str, str]) -> Refusal | None:
        authorization = headers.get("authorization")
        if not authorization:
            return forbidden(
                "Missing Authentication Token: this admin route is IAM-authorized; sign the request with "
                "SigV4 (service execute-api)"
            )
        signature = SIGV4.match(authorization.strip())
        if signature is None:
            return forbidden(f"Invalid signature: the Authorization header must read {SIGV4_SHAPE}")
        amz_date = AMZ_DATE.match(headers.get("x-amz-date", ""))
        if amz_date is None:
            return forbidden("Invalid signature: a SigV4 request needs X-Amz-Date (YYYYMMDDTHHMMSSZ)")
        if amz_date["date"] != signature["date"]:
            return forbidden("Invalid signature: the credential scope's date is not the X-Amz-Date's")
        if not {"host", "x-amz-date"} <= set(signature["signed"].split(";")):
            return forbidden("Invalid signature: SignedHeaders must include host and x-amz-date")
        return None
