"""A tiny in-process stand-in for the twin's routes the simulator calls, and an HTTP server around it.

Pages are deterministic: ``/users/{id}/recommendations`` ranks the catalogue by the truth's relevance
for that shopper (an oracle), ``/items/popular`` is the catalogue's first k items, ``/items/{id}/similar``
the k items after it. Shoppers are split into two variants of one experiment by their id. Every page
served and every event received is recorded, so a test can compare them with the simulator's counts.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_twin.simulation.client import Answer
from local_twin.simulation.truth import ShopTruth
from merchandiser.api import EventsRequest

EXPERIMENT = "stub-test"


class FakeShopApi:
    def __init__(
        self, truth: ShopTruth, failing: Callable[[str, str], int | None] = lambda method, path: None
    ):
        self.truth = truth
        self.failing = failing  # (method, path) -> a status to answer instead, or None
        self.pages: dict[str, dict[str, Any]] = {}  # recommendation_id -> page as served
        self.events: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        self._lock = threading.Lock()

    def get(self, path: str) -> Answer:
        with self._lock:
            self.calls[f"GET {urlsplit(path).path}"] += 1
        status = self.failing("GET", path)
        if status is not None:
            return status, {"error": "STUB_FAILURE", "message": f"told to answer {status}"}
        parts = urlsplit(path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        k, segments = int(query.get("k", 20)), [unquote(s) for s in parts.path.strip("/").split("/")]
        catalogue = self.truth.item_ids
        if segments[0] == "users":
            user_id, surface = segments[1], query.get("surface", "home")
            relevance = self.truth.relevance(user_id, catalogue)
            order = sorted(range(len(catalogue)), key=lambda row: (-relevance[row], row))
            items, experiment, variant = (
                [catalogue[row] for row in order[:k]],
                EXPERIMENT,
                variant_of(user_id),
            )
        elif segments[1] == "popular":
            user_id, surface, experiment, variant = "", "popular", None, "production"
            items = catalogue[:k]
        else:
            user_id, surface, experiment, variant = query.get("user_id", ""), "similar", None, "production"
            first = catalogue.index(segments[1]) + 1
            items = [catalogue[(first + n) % len(catalogue)] for n in range(k)]
        with self._lock:
            self._served[path] += 1
            recommendation_id = f"rec-{surface}-{user_id or 'anon'}-{self._served[path]}-{len(self.pages)}"
            page = {
                "recommendation_id": recommendation_id,
                "model_version": "stub-1",
                "experiment": experiment,
                "variant": variant,
                "surface": surface,
                "user_id": user_id or None,
                "items": [
                    {"item_id": item, "score": 1.0, "source": "stub", "reason": "stub"} for item in items
                ],
            }
            self.pages[recommendation_id] = page
        return 200, page

    def post(self, path: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            self.calls[f"POST {path}"] += 1
        status = self.failing("POST", path)
        if status is not None:
            return status, {"error": "STUB_FAILURE", "message": f"told to answer {status}"}
        request = EventsRequest.model_validate(body)  # the real contract of POST /events
        with self._lock:
            self.events += [event.model_dump(mode="json", exclude_none=True) for event in request.events]
        return 202, {"accepted": len(request.events), "event_ids": [e.event_id for e in request.events]}


def variant_of(user_id: str) -> str:
    return "personalized" if int(user_id.strip("u") or 0) % 2 else "holdout"


@contextmanager
def serving_over_http(api: FakeShopApi, expect_key: str | None = None) -> Iterator[str]:
    """The stub behind a real HTTP server on 127.0.0.1 (under /v1, like the twin); yields its api_url."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _allowed(self) -> bool:
            if expect_key is not None and self.headers.get("x-api-key") != expect_key:
                self._answer(403, {"error": "FORBIDDEN", "message": "missing or wrong x-api-key"})
                return False
            return True

        def do_GET(self) -> None:
            if self._allowed():
                self._answer(*api.get(self.path.removeprefix("/v1")))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self._allowed():
                self._answer(*api.post(self.path.removeprefix("/v1"), body))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
