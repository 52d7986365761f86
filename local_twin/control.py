"""The running twin's control endpoint: how ``merchandiser retrain`` (another process) asks it to retrain.

The twin's functions, its Firehose stand-in (records buffered in memory) and the model it serves live in
the ``merchandiser up`` process, so a retrain must run there. ``POST /retrain`` with
``{"hyperparameters": {"name": "value"}}`` runs ``Twin.retrain`` and answers its result as JSON (the
evaluation included). It listens on 127.0.0.1 only, like the moto server it fronts, and is not part of
the API the stacks declare (so it is not behind the API's credentials); the state file names it
``control_url``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 64 * 1024

Retrain = Callable[[dict[str, str]], dict[str, Any]]


class ControlServer:
    def __init__(self, retrain: Retrain, port: int = 0) -> None:
        self._retrain = retrain
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="twin-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        retrain = self._retrain

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/retrain":
                    self._answer(404, {"error": "NOT_FOUND", "message": f"no control route {self.path}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": "TOO_LARGE", "message": f"at most {MAX_BODY_BYTES} bytes"})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    hyperparameters = {str(k): str(v) for k, v in body.get("hyperparameters", {}).items()}
                except (ValueError, AttributeError) as error:
                    self._answer(400, {"error": "BAD_REQUEST", "message": str(error)})
                    return
                try:
                    self._answer(200, retrain(hyperparameters))
                except Exception as error:  # the training job failed: say so to the caller, keep serving
                    self._answer(
                        500, {"error": "RETRAIN_FAILED", "message": f"{type(error).__name__}: {error}"}
                    )

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the twin narrates; no access log on stderr

        return Handler
