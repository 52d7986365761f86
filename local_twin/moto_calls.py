"""How many AWS calls moto's process answered, by operation (installed in moto's process).

What a page costs the twin depends first on how many calls it makes to moto and which: the twin bench
(``bench_twin``) reads these counts before and after each phase and reports the calls per page. A WSGI
layer in front of moto's app counts every request by its operation: the JSON protocols' ``X-Amz-Target``
(``DynamoDB_20120810.GetItem``, ``Kinesis_20131202.PutRecords``), else the method and the first path
segment (S3, API Gateway: ``GET /bucket``). ``GET /_twin/calls`` answers ``{"calls": {operation: n}}``;
the count survives moto's errors (a throttled call is still a call).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

CALLS_PATH = "/_twin/calls"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def operation(environ: dict[str, Any]) -> str:
    """The AWS operation of a request, as this module counts it."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target
    segment = str(environ.get("PATH_INFO", "/")).lstrip("/").split("/", 1)[0]
    return f"{environ.get('REQUEST_METHOD', 'GET')} /{segment}"


class CallCounter:
    """moto's app, with every request counted by ``operation`` (its own lock: whatever serves it)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.calls = Counter[str]()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CALLS_PATH:
            with self._lock:
                body = json.dumps({"calls": dict(self.calls)}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        with self._lock:
            self.calls[operation(environ)] += 1
        return self.app(environ, start_response)
