"""``merchandiser console``: the staff console's files over HTTP on 127.0.0.1, and the twin's API behind it.

    merchandiser console --state twin.json [--port 8090]

The browser talks to one origin, as it does in AWS behind CloudFront: ``/`` serves ``console/`` and
``/v1/...`` goes to the twin's ``api_url``. The proxy adds the twin's credentials on the way, so the
browser never holds them: the storefront's ``x-api-key`` from the state file when there is one, and a
SigV4 signature (service ``execute-api``, ``local_twin.api_client``) on every request, which the
IAM-authorized admin routes need and the others ignore. moto accepts any AWS credentials: the signature
uses the environment's, else fixed stand-ins. ``/config.json`` tells the page it runs on the twin (in AWS
the console stack writes one naming the Cognito pools).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import signal
import threading
import urllib.error
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from local_twin import api_client

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
API_PREFIX = "/v1"  # the API Gateway stage: the page calls /v1/... in AWS and here alike
DEFAULT_PORT = 8090
# moto checks no credentials: these sign when the environment has none
STAND_IN_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "twin-console", "AWS_SECRET_ACCESS_KEY": "twin-console-secret"}
MAX_BODY_BYTES = 6 * 1024 * 1024
PROXIED_RESPONSE_HEADERS = ("content-type",)
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json"}


class TwinApi:
    """Sends a request to the twin's API with its credentials (``api_client``): (status, headers, body)."""

    def __init__(self, state: Mapping[str, Any], timeout: float = 30.0):
        api_url = state.get("api_url")
        if not api_url:
            raise ValueError(
                "the state file has no api_url: is the twin serving (merchandiser up --state ...)?"
            )
        self.api_url = str(api_url).rstrip("/")
        self.api_key = state.get("api_key") or None
        self.timeout = timeout

    def send(
        self, method: str, path_and_query: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        kind = next((value for name, value in headers.items() if name.lower() == "content-type"), None)
        try:
            answer = api_client.send(
                method,
                f"{self.api_url}{path_and_query}",
                body,
                api_key=self.api_key,
                signed=True,  # the admin routes need it; the others ignore it, as API Gateway does
                content_type=kind or "application/json",
                timeout=self.timeout,
            )
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            return error_answer(
                502, "API_UNREACHABLE", f"the twin's API at {self.api_url} did not answer: {reason}"
            )
        return answer.status, answer.headers, answer.body


def error_answer(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"Content-Type": "application/json"},
        json.dumps({"error": code, "message": message}).encode(),
    )


def static_file(root: Path, path: str) -> Path | None:
    """The file under ``root`` a URL path names (``/`` is index.html); None outside ``root`` or missing."""
    relative = path.lstrip("/") or "index.html"
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    return candidate


class ConsoleServer:
    def __init__(self, state: Mapping[str, Any], port: int = 0, console_dir: Path = CONSOLE_DIR):
        self.api = TwinApi(state)
        self.console_dir = console_dir
        config = json.dumps({"mode": "twin", "apiBase": API_PREFIX, "apiUrl": self.api.api_url}).encode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # the command prints only its URL
                return

            def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _serve(self) -> None:
                path = urlsplit(self.path).path
                if path == API_PREFIX or path.startswith(f"{API_PREFIX}/"):
                    self._reply(*server.proxy(self.command, self.path, dict(self.headers), self._body()))
                elif self.command not in ("GET", "HEAD"):
                    self._reply(
                        *error_answer(405, "METHOD_NOT_ALLOWED", f"{self.command} is for {API_PREFIX}/ only")
                    )
                elif path == "/config.json":
                    self._reply(200, {"Content-Type": "application/json"}, config)
                else:
                    self._reply(*server.static(path))

            def _body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(min(length, MAX_BODY_BYTES + 1)) if length else None

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="twin-console", daemon=True)

    def proxy(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        if body is not None and len(body) > MAX_BODY_BYTES:
            return error_answer(413, "PAYLOAD_TOO_LARGE", "the request body exceeds 6 MB")
        status, answer_headers, payload = self.api.send(method, target[len(API_PREFIX) :], body, headers)
        kept = {
            name: value for name, value in answer_headers.items() if name.lower() in PROXIED_RESPONSE_HEADERS
        }
        return status, kept, payload

    def static(self, path: str) -> tuple[int, dict[str, str], bytes]:
        found = static_file(self.console_dir, path)
        if found is None:
            return error_answer(404, "NOT_FOUND", f"no console file {path}")
        kind = TYPES.get(found.suffix) or mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": kind}, found.read_bytes()

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_console(state: Mapping[str, Any], port: int = 0) -> ConsoleServer:
    """A running console for a twin's state (``Twin.state()``); ``make demo`` prints its ``url``."""
    console = ConsoleServer(state, port)
    console.start()
    return console


def cmd_console(args: argparse.Namespace) -> int:
    if boto3.Session().get_credentials() is None:
        os.environ.update(STAND_IN_CREDENTIALS)
    try:
        state = json.loads(args.state.read_text())
        console = ConsoleServer(state, args.port)
    except (OSError, json.JSONDecodeError, ValueError) as error:
        raise SystemExit(f"merchandiser console: cannot use {args.state}: {error}") from None
    url = console.start()
    print(url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    console.stop()
    return 0


def add_parser(commands: Any) -> None:
    console = commands.add_parser(
        "console", help="serve the staff web console against a running twin (prints its URL)"
    )
    console.add_argument("--state", type=Path, required=True, help="the state file `merchandiser up` wrote")
    console.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks one"
    )
    console.set_defaults(run=cmd_console)
