"""moto's server in a process of its own, with the twin's extensions loaded in that process.

moto keeps its backends in the memory of the process that serves them. Served from the handlers'
own interpreter, every DynamoDB read of a page waited for the GIL behind the handlers (p99 209 ms);
in its own process it has an interpreter to itself, and a fresh process starts with a clean slate.

- The parent binds a listening socket on 127.0.0.1 (port 0: the OS picks a free one) and hands its
  file descriptor to the child, so the port is known before the child starts and no other process
  can take it in between; readiness is a request answered, polled until a deadline.
- The child runs this module (``python -m local_twin.moto_process --fd N``): it installs
  ``moto_extensions`` (the CloudFormation models and the stream-trigger rule the twin needs must live
  where moto's backends live) and ``moto_fast_items`` (items answered without moto's per-value
  serializer), then serves moto's own WSGI app with moto's own request handler, one request at a
  time inside the app (``SerializedApp``): moto's backends are plain dicts and lists without locks.
  The handler keeps connections open between requests (``keep_alive_handler``): werkzeug closes
  every one, so each AWS call of the twin paid a TCP connect and a new server thread.
  ``moto_calls`` counts the calls by operation for the bench; ``moto_fast_routing`` routes a request
  without listing moto's package directory; ``moto_fast_transactions`` backs a transaction's table up
  once, not once per action.
- Killed with the twin: the child holds the read end of a pipe whose write end only the parent has
  (its stdin); when the parent dies, however it dies, the pipe closes and the child exits.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from typing import Any

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
READY_PROBE = "/moto-api/"  # moto's dashboard: answered by moto's WSGI app, touches no backend
STOP_TIMEOUT_S = 10.0


def how_it_ended(returncode: int) -> str:
    return f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"


class MotoProcessDied(RuntimeError):
    """moto's server process is gone: the twin's AWS endpoint no longer answers."""


class MotoProcess:
    """A running moto server process; ``endpoint`` is its URL on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], endpoint: str):
        self.process = process
        self.endpoint = endpoint

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, ready_timeout_s: float = READY_TIMEOUT_S) -> MotoProcess:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((HOST, 0))
            listener.listen(128)
            endpoint = f"http://{HOST}:{listener.getsockname()[1]}"
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, "--fd", str(listener.fileno())],
                stdin=subprocess.PIPE,  # the lifeline: EOF there means the twin is gone
                pass_fds=(listener.fileno(),),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            listener.close()  # the child has its own copy; the parent never accepts on it
        server = cls(process, endpoint)
        try:
            server.wait_until_ready(ready_timeout_s)
        except BaseException:
            server.stop()
            raise
        return server

    def wait_until_ready(self, timeout_s: float) -> None:
        """Polls a request until moto answers it (connections queue on the socket meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.ensure_alive()
            try:
                with urllib.request.urlopen(f"{self.endpoint}{READY_PROBE}", timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # importing moto takes a second or two before the first answer
            if time.monotonic() > deadline:
                raise MotoProcessDied(
                    f"moto's server (pid {self.pid}) did not answer within {timeout_s:.0f} s"
                )
            time.sleep(0.05)

    def exit_code(self) -> int | None:
        """None while the process runs."""
        return self.process.poll()

    def ensure_alive(self) -> None:
        code = self.exit_code()
        if code is not None:
            raise MotoProcessDied(
                f"moto's server process (pid {self.pid}, {self.endpoint}) {how_it_ended(code)}: the "
                "twin's AWS resources are gone with it; stop this twin and start a new one"
            )

    def set_faults(self, **settings: float) -> dict[str, Any]:
        """Turns the injected faults on or off (``moto_faults.FaultSettings``); returns what moto says."""
        return faults(self.endpoint, settings)

    def stop(self) -> None:
        """Ends the process (SIGTERM, then SIGKILL after a grace period) and reaps it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def faults(endpoint: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The injected faults of the moto at ``endpoint``: set to ``settings`` when given, and the counts
    of what was refused so far (``moto_faults``)."""
    from local_twin.moto_faults import FAULTS_PATH

    body = None if settings is None else json.dumps(settings).encode()
    request = urllib.request.Request(
        f"{endpoint}{FAULTS_PATH}", data=body, method="GET" if body is None else "POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


# -- the child ------------------------------------------------------------------------------------
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedApp:
    """moto's WSGI app, entered by one request at a time.

    moto's backends keep their state in plain dicts and lists and take no lock: two PutRecords on one
    shard read the same last sequence number and one record overwrites the other, an ADD on one item
    loses an increment, a GetRecords iterating a shard while a put appends raises "OrderedDict mutated
    during iteration" (a 500). The server stays threaded, so connections are accepted and bodies written
    concurrently, but what touches a backend runs alone. The GIL serialized that work anyway, so little
    is lost. Nothing the twin sends waits inside moto (no SQS long poll), which would hold the others.
    """

    def __init__(self, app: WsgiApp):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            response = self.app(environ, start_response)
            try:
                body = b"".join(response)  # moto builds the whole answer here: done under the lock
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
        return [body]


def read_whole_body(environ: dict[str, Any]) -> bool:
    """Reads the request's body to its end and hands it to the app from memory, so that the connection is
    at the next request's first byte whatever the app reads of it; False when the client sent less than
    it announced."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's dechunker ends where the body ends
        body = stream.read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = stream.read(length) if length > 0 else b""
        if len(body) < length:
            return False
    environ["wsgi.input"] = io.BytesIO(body)
    return True


def keep_alive_handler() -> type[Any]:
    """moto's request handler (its environ: S3 metadata headers keep their spelling) answering with HTTP/1.1
    keep-alive. werkzeug's own ``run_wsgi`` closes every connection, and after each answer it reads
    whatever the client sends within 10 ms to discard it (the next request, on a kept-alive connection),
    so this one replaces it: the body is read whole before the app runs, the answer is sent with its
    length, and the connection stays open unless the client asks otherwise or something went wrong.
    Nagle is off: the headers and the body are two writes, and on a kept-alive connection the body would
    wait for the client's delayed ACK (40 ms)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if logging.getLogger("werkzeug").isEnabledFor(logging.INFO):  # the line's date costs otherwise
                super().log_request(code, size)

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").lower().strip() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            if not read_whole_body(environ):
                self.close_connection = True  # the client went away mid-body
                return
            answer: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer["status"], answer["headers"] = status, headers
                return lambda data: answer.setdefault("written", []).append(data)

            try:
                response = self.server.app(environ, start_response)
                try:
                    body = b"".join([*answer.get("written", []), *response])
                finally:
                    close = getattr(response, "close", None)
                    if close is not None:
                        close()
            except Exception:  # moto's app failed outside its own error handling: a 500, then close
                self.log_error("moto's app failed on %s %s", self.command, self.path)
                self.send_error(500)
                return
            code, _, reason = str(answer["status"]).partition(" ")
            self.send_response(int(code), reason)
            length = None
            for name, value in answer["headers"]:
                lowered = name.lower()
                if lowered == "content-length":
                    length = value
                elif lowered not in ("connection", "transfer-encoding"):
                    self.send_header(name, value)
            # a HEAD answer says the length of what a GET would send, and sends nothing
            self.send_header(
                "Content-Length", length if self.command == "HEAD" and length else str(len(body))
            )
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

    return KeepAliveRequestHandler


def calls(endpoint: str) -> dict[str, int]:
    """The AWS calls the moto at ``endpoint`` answered so far, by operation (``moto_calls``)."""
    from local_twin.moto_calls import CALLS_PATH

    with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}", timeout=10) as response:
        answer: dict[str, int] = json.loads(response.read())["calls"]
    return answer


def exit_when_parent_goes() -> None:
    """Blocks on stdin, whose other end only the parent holds: EOF means the twin is gone."""
    sys.stdin.buffer.read()
    os._exit(0)


def serve(fd: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from local_twin import moto_extensions, moto_fast_items, moto_fast_routing, moto_fast_transactions
    from local_twin.moto_calls import CallCounter
    from local_twin.moto_faults import FaultInjector

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
    moto_extensions.register()
    moto_fast_items.register()
    moto_fast_routing.register()
    moto_fast_transactions.register()
    server = make_server(
        HOST,
        0,
        SerializedApp(CallCounter(FaultInjector(DomainDispatcherApplication(create_backend_app)))),
        threaded=True,
        request_handler=keep_alive_handler(),
        fd=fd,
    )
    threading.Thread(target=exit_when_parent_goes, name="moto-lifeline", daemon=True).start()
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_twin.moto_process", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="a listening socket inherited from the twin")
    serve(parser.parse_args(argv).fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
