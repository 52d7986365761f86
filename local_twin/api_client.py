"""One small client for the Merchandiser API, on the twin or in AWS: the storefront's key, SigV4 for admins.

    status, body, millis = call("GET", f"{api}/items/popular?k=5", api_key=key)
    status, body, millis = call("PUT", f"{api}/items/sku-1", {"title": "Mug"}, signed=True)

Shopper routes take the storefront's API key (``x-api-key``); admin routes are signed with SigV4 for
``execute-api`` using the standard AWS credential chain (the twin accepts any credentials, as moto does).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

DEFAULT_REGION = "us-east-1"
EXECUTE_API_HOST = re.compile(r"\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


class ApiResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    millis: float

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


def region_of(url: str) -> str:
    """The region of an execute-api URL; the environment's (or us-east-1) for the twin's 127.0.0.1."""
    match = EXECUTE_API_HOST.search(urlsplit(url).hostname or "")
    return match["region"] if match else os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)


def sigv4_headers(method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus Authorization and X-Amz-Date (and the session token, if any) for execute-api."""
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign an admin request (AWS_ACCESS_KEY_ID, a profile, ...)")
    request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region_of(url)).add_auth(request)
    return dict(request.headers.items())


def send(
    method: str,
    url: str,
    body: Any = None,
    api_key: str | None = None,
    signed: bool = False,
    content_type: str = "application/json",
    extra_headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> ApiResponse:
    """One request; ``body`` is sent as JSON, or as it is when it is bytes. Errors are answers, not raised."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": content_type, **(extra_headers or {})}
    if api_key is not None:
        headers["x-api-key"] = api_key
    if signed:
        headers = sigv4_headers(method, url, data, headers)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer_headers, payload = response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as refused:
        status, answer_headers, payload = refused.code, dict(refused.headers.items()), refused.read()
    return ApiResponse(status, answer_headers, payload, (time.perf_counter() - started) * 1000)


def call(
    method: str, url: str, body: Any = None, api_key: str | None = None, signed: bool = False
) -> tuple[int, dict[str, Any], float]:
    """(status, JSON body, milliseconds) of one request."""
    response = send(method, url, body, api_key=api_key, signed=signed)
    return response.status, response.json(), response.millis
