"""The twin's API Gateway: HTTP requests in, REST API proxy events to the routed function, responses out.

The route table is read back from the RestApi that CloudFormation created in moto (resources,
methods and their Lambda integrations), so the twin serves exactly the routes the stack declares.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BODY_BYTES = 6 * 1024 * 1024  # API Gateway's payload limit for Lambda proxy
# (method, resource, headers) -> None to let the request through, else the refusal (local_twin.gateway_auth)
Authorize = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes] | None]


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # e.g. /users/{user_id}/recommendations
    function: str  # function key

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.resource))
        return re.compile(f"^{regex}$")


def routes_from_rest_api(
    apigateway: Any, rest_api_id: str, function_of_arn: Callable[[str], str]
) -> list[Route]:
    routes = []
    resources = apigateway.get_resources(restApiId=rest_api_id, embed=["methods"], limit=500)["items"]
    for resource in resources:
        for method in resource.get("resourceMethods", {}):
            integration = apigateway.get_integration(
                restApiId=rest_api_id, resourceId=resource["id"], httpMethod=method
            )
            match = re.search(r"function:([^/:]+)", integration.get("uri", ""))
            if match:
                routes.append(Route(method, resource["path"], function_of_arn(match.group(1))))
    # Static segments before parameters, as API Gateway matches them (/items/popular before /items/{id}).
    return sorted(routes, key=lambda r: (r.resource.count("{"), r.resource))


def proxy_event(
    method: str,
    route: Route,
    path: str,
    params: dict[str, str],
    query: str,
    headers: dict[str, str],
    body: bytes | None,
) -> dict[str, Any]:
    multi_query = parse_qs(query, keep_blank_values=True)
    text = body.decode("utf-8", errors="replace") if body else None
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.resource,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
        },
        "body": text,
        "isBase64Encoded": False,
    }


class HttpFront:
    def __init__(
        self,
        routes: Iterable[Route],
        invoke: Callable[[str, dict[str, Any]], dict[str, Any]],
        port: int = 0,
        authorize: Authorize | None = None,
    ):
        self.routes = list(routes)
        self.authorize = authorize
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, a kept-alive client's delayed ACK
            # holds the body back 40 ms on every request after the first.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # keep the console for the demo
                return

            def _serve(self) -> None:
                status, headers, payload = front.handle(
                    self.command, self.path, dict(self.headers), self._body()
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(min(length, MAX_BODY_BYTES + 1)) if length else None

            def __getattr__(self, name: str) -> Any:
                # every method (TRACE, PATCH, ...) gets a JSON answer (405 or 404), not the stdlib's HTML 501
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self._invoke = invoke
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, name="twin-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = parts.path.removeprefix("/v1") or "/"
        if body is not None and len(body) > MAX_BODY_BYTES:
            return _error(413, "PAYLOAD_TOO_LARGE", "the request body exceeds 6 MB")
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                refusal = self.authorize(method, route.resource, headers) if self.authorize else None
                if refusal is not None:
                    return refusal
                params = {name: unquote(value) for name, value in match.groupdict().items()}  # as API Gateway
                event = proxy_event(method, route, path, params, parts.query, headers, body)
                response = self._invoke(route.function, event)
                payload = response.get("body") or ""
                data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
                # API Gateway merges both header maps; Powertools' REST resolver sets only multiValueHeaders
                answer_headers = dict(response.get("headers") or {})
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    answer_headers[name] = ", ".join(str(value) for value in values)
                return int(response.get("statusCode", 502)), answer_headers, data
        allowed = sorted({route.method for route in self.routes if route.pattern.match(path)})
        if allowed:  # API Gateway itself answers 403 MissingAuthenticationToken; the twin says what is wrong
            status, answer_headers, data = _error(
                405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path}"
            )
            return status, {**answer_headers, "Allow": ", ".join(allowed)}, data
        return _error(404, "NOT_FOUND", f"no route for {method} {path}")


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": code, "message": message}).encode()
    return status, {"Content-Type": "application/json"}, body
