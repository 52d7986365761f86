"""`merchandiser console`'s server without a browser: its files, its proxy with the twin's credentials, its
refusals; and the experiment rules the console's form checks, kept equal to the API's."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local_twin.cli import main
from local_twin.console_server import CONSOLE_DIR, ConsoleServer, static_file
from merchandiser.experiments.definition import NAME_PATTERN, POLICIES, PRODUCTION, SHARE_TOLERANCE, SURFACES


class FakeApi:
    """An HTTP server that records each request and answers a fixed JSON body."""

    def __init__(self, status: int = 200, answer: bytes = b'{"ok": true}') -> None:
        self.seen: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                api.seen.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "body": self.rfile.read(length) if length else b""}
                )  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_PUT = do_DELETE = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.stop()


@pytest.fixture
def console(upstream: FakeApi) -> Iterator[str]:
    server = ConsoleServer({"api_url": upstream.url, "api_key": "storefront-key-1", "region": "us-east-1"})
    url = server.start()
    yield url
    server.stop()


def fetch(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("Content-Type", ""), refused.read()


def test_the_proxy_adds_the_twins_key_and_a_sigv4_signature_the_browser_never_sees(
    console: str, upstream: FakeApi
) -> None:
    # When the page asks the console for an admin route with a body
    status, kind, body = fetch(f"{console}v1/items/i1?x=1", "PUT", b'{"title": "Hat"}')
    # Then the twin's API got it at the same path, with the key and a signature for execute-api
    assert status == 200 and kind == "application/json" and json.loads(body) == {"ok": True}
    [seen] = upstream.seen
    assert (seen["method"], seen["path"], seen["body"]) == ("PUT", "/v1/items/i1?x=1", b'{"title": "Hat"}')
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert headers["x-api-key"] == "storefront-key-1"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/execute-api/aws4_request" in headers["authorization"] and "x-amz-date" in headers


def test_the_console_files_and_its_config_are_served(console: str) -> None:
    status, kind, page = fetch(console)
    assert status == 200 and kind.startswith("text/html") and b'src="app.js"' in page
    status, kind, _ = fetch(f"{console}views/shopper.js")
    assert status == 200 and kind == "text/javascript"  # what a module script needs
    status, _, config = fetch(f"{console}config.json")
    assert json.loads(config)["mode"] == "twin" and json.loads(config)["apiBase"] == "/v1"


def test_outside_the_console_nothing_is_served_and_the_answer_says_why(console: str) -> None:
    status, _, body = fetch(f"{console}no-such-file.js")
    assert status == 404 and json.loads(body)["error"] == "NOT_FOUND"
    assert static_file(CONSOLE_DIR, "/../pyproject.toml") is None
    assert static_file(CONSOLE_DIR, "/%2e%2e/pyproject.toml") is None
    status, _, body = fetch(f"{console}index.html", "PUT", b"{}")
    assert status == 405 and "for /v1/ only" in json.loads(body)["message"]


def test_an_unreachable_api_is_a_502_with_the_reason() -> None:
    server = ConsoleServer({"api_url": "http://127.0.0.1:9/v1"})  # port 9 (discard): nothing listens
    url = server.start()
    try:
        status, _, body = fetch(f"{url}v1/health")
    finally:
        server.stop()
    answer = json.loads(body)
    assert status == 502 and answer["error"] == "API_UNREACHABLE" and "127.0.0.1:9" in answer["message"]


def test_the_command_refuses_a_state_file_without_an_api_url(tmp_path: Path) -> None:
    state = tmp_path / "twin.json"
    state.write_text(json.dumps({"endpoint_url": "http://127.0.0.1:1"}))
    with pytest.raises(SystemExit, match="no api_url"):
        main(["console", "--state", str(state), "--port", "0"])
    with pytest.raises(SystemExit, match="cannot use"):
        main(["console", "--state", str(tmp_path / "missing.json"), "--port", "0"])


def test_the_forms_rules_are_the_apis() -> None:
    rules = json.loads((CONSOLE_DIR / "experiment-rules.json").read_text())
    assert rules == {
        "surfaces": list(SURFACES),
        "policies": list(POLICIES),
        "name_pattern": NAME_PATTERN,
        "share_tolerance": SHARE_TOLERANCE,
        "reserved_variant_names": [PRODUCTION],
    }
