"""The simulator's view of the shop: two calls, ``get`` and ``post``, over the twin's real HTTP API.

``TwinHttpApi`` speaks HTTP/1.1 with ``http.client``, one kept-alive connection per worker thread, to a
loopback address only (the simulator floods whatever it is pointed at with fake shoppers), with the
storefront's API key as ``x-api-key`` when the twin's state has one. ``call_with_retries`` retries what
a retry can fix (a dropped connection, a 5xx) a bounded number of times; a 4xx is the caller's fault.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

Answer = tuple[int, dict[str, Any]]
LOOPBACK_NAMES = frozenset({"localhost"})
ATTEMPTS = 3
CONNECTION_FAILED = 599  # a status for "no HTTP answer at all" (refused, reset, timed out)


class ShopApi(Protocol):
    def get(self, path: str) -> Answer: ...

    def post(self, path: str, body: dict[str, Any]) -> Answer: ...


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TwinHttpApi:
    def __init__(self, api_url: str, api_key: str | None = None, timeout: float = 15.0):
        parts = urlsplit(api_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the twin's api_url must be an http:// URL, not {api_url!r}")
        if not is_loopback(parts.hostname):
            raise ValueError(f"the simulator only talks to a twin on this machine, not {parts.hostname}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self.headers["x-api-key"] = api_key
        self.timeout = timeout
        self._local = threading.local()

    def get(self, path: str) -> Answer:
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Answer:
        return self._request("POST", path, json.dumps(body).encode())

    def _request(self, method: str, path: str, body: bytes | None) -> Answer:
        connection = self._connection()
        try:
            connection.request(method, self.base_path + path, body=body, headers=self.headers)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()  # a fresh connection on the next call
            self._local.connection = None
            return CONNECTION_FAILED, {
                "error": "CONNECTION_FAILED",
                "message": f"{type(error).__name__}: {error}",
            }
        try:
            answer = json.loads(payload) if payload else {}
        except ValueError:
            answer = {"error": "NOT_JSON", "message": payload[:200].decode(errors="replace")}
        return status, answer if isinstance(answer, dict) else {"body": answer}

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.connection = connection
        return connection


def call_with_retries(
    call: Callable[[], Answer], pause: Callable[[int], None], attempts: int = ATTEMPTS
) -> Answer:
    """The first answer that is not a 5xx (or no answer), else the last one after ``attempts`` tries."""
    status, answer = call()
    for attempt in range(attempts - 1):
        if status < 500:
            break
        pause(attempt)
        status, answer = call()
    return status, answer
