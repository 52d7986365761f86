"""The twin's API Gateway served by several processes at once, each with the real handlers in it.

In one interpreter every page waits for the GIL behind the other pages, the Kinesis poller and the
archive writer; measured on the Online Retail data, the handlers' Python work (about 12 ms a page) then
caps the twin near one core. Here the front is pre-forked, gunicorn-style: the twin binds one listening
socket on 127.0.0.1 and starts ``workers`` fresh interpreters (``python -m local_twin.front_workers``,
not ``fork``: the twin's process has threads and a jsii child) that all accept on that socket, so a
worker whose interpreter is busy leaves the next connection to an idle one. Each worker runs an
``HttpFront`` over its own ``Functions``, imports the handlers and loads the model once (its first
``GET /health``) before it says it is ready; the handlers keep nothing between requests but their
caches, as Lambda containers of one function do. The poller, the archive writer and the training
path stay in the twin's own process.

A model swap changes the functions' environment (``MODEL_DIR``): ``update`` starts a new generation
of workers with it, waits until they are ready, then stops the old ones, which finish the requests
they hold and put the impressions they still buffer (as Lambda sends new requests to the new version's
containers). Each worker holds a pipe from the twin on its stdin: closing it asks the worker to stop, and
it closes too when the twin dies, however it dies. A line ``settle`` on that pipe asks the worker to put
every impression it buffers on the stream; it answers ``settled`` (or ``unsettled`` after
``SETTLE_TIMEOUT_S``) on its answer pipe, where it said ``ready``: the twin's ``settle`` waits for that,
since a page's impression is put after the page answered (the twin sets no flush wait, see ``twin``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping

import boto3

from local_twin.gateway_auth import GatewayAuth, MethodAccess, enabled_key_values
from local_twin.http_front import HttpFront, Route
from local_twin.moto_process import how_it_ended

HOST = "127.0.0.1"
FRONT_WORKERS = 2  # the twin's default: one per core here (0 serves from the twin's own process)
READY_TIMEOUT_S = 180.0  # imports and the model load, on a busy 2-core machine
STOP_TIMEOUT_S = 15.0  # in-flight requests are finished within the functions' own 10 s timeout
# A stopping worker still answers its kept-alive connections this long (with Connection: close), so a
# client between two requests moves to a new worker instead of finding its connection dropped.
DRAIN_GRACE_S = 1.0
SETTLE_TIMEOUT_S = 10.0  # a worker's impression buffer emptied onto the stream, at most this long
WARM_UP = ("GET", "/v1/health")


class FrontWorkerError(RuntimeError):
    """A worker of the front did not start, or died."""


class FrontWorkers:
    """``workers`` processes serving ``routes`` on one port; ``url`` is the API's base URL."""

    def __init__(
        self,
        routes: Iterable[Route],
        environments: Mapping[str, Mapping[str, str]],
        workers: int = 2,
        port: int = 0,
        base_environment: Mapping[str, str] | None = None,  # the twin's, outside any function's turn
        access: Mapping[tuple[str, str], MethodAccess] | None = None,  # the RestApi's credentials
    ):
        if workers < 1:
            raise ValueError("a front needs at least one worker")
        self.routes = list(routes)
        self.workers = workers
        self._environments = {key: dict(env) for key, env in environments.items()}
        self._base_environment = dict(os.environ if base_environment is None else base_environment)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, port))
        self._listener.listen(128)
        self.url = f"http://{HOST}:{self._listener.getsockname()[1]}/v1"
        self._workers: list[Worker] = []
        self._access = dict(access or {})
        self._generation = threading.Lock()  # a settle and a new generation of workers, one at a time

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers]

    def start(self) -> None:
        self._workers = self._start_generation()

    def update(self, environments: Mapping[str, Mapping[str, str]]) -> None:
        """Serves with ``environments`` from now on: new workers first, then the old ones stop."""
        self._environments = {key: dict(env) for key, env in environments.items()}
        with self._generation:
            old, self._workers = self._workers, self._start_generation()
        _stop(old)  # each old worker puts what it still buffers before it exits

    def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
        """Every worker puts the impressions it buffers on the stream; True when all did in time."""
        with self._generation:
            workers = list(self._workers)
            for worker in workers:
                worker.ask_to_settle()
            deadline = time.monotonic() + timeout_s
            return all([worker.settled(deadline) for worker in workers])

    def ensure_alive(self) -> None:
        for worker in self._workers:
            code = worker.process.poll()
            if code is not None:
                raise FrontWorkerError(
                    f"front worker {worker.process.pid} {how_it_ended(code)}: the API at {self.url} has "
                    "one server fewer; stop this twin and start a new one"
                )

    def stop(self) -> None:
        _stop(self._workers)
        self._workers = []
        self._listener.close()

    def _start_generation(self) -> list[Worker]:
        spec = json.dumps(
            {
                "routes": [[route.method, route.resource, route.function] for route in self.routes],
                "environments": self._environments,
                "access": [
                    [method, resource, rule.api_key_required, rule.authorization_type]
                    for (method, resource), rule in sorted(self._access.items())
                ],
            }
        ).encode()
        workers: list[Worker] = []
        try:
            for _ in range(self.workers):
                workers.append(Worker.start(self._listener, spec, self._base_environment))
            deadline = time.monotonic() + READY_TIMEOUT_S
            for worker in workers:
                worker.wait_until_ready(deadline)
        except BaseException:
            _stop(workers)
            raise
        return workers


class Worker:
    """One worker process: its stdin is the twin's lifeline to it; it writes "ready" on its own pipe
    (its stdout stays the twin's, where the handlers log)."""

    def __init__(self, process: subprocess.Popen[bytes], ready: int):
        self.process = process
        self._answers = os.fdopen(ready, "rb", buffering=0)  # the read end of its answer pipe

    @classmethod
    def start(cls, listener: socket.socket, spec: bytes, environment: Mapping[str, str]) -> Worker:
        ready_read, ready_write = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    __name__,
                    "--fd",
                    str(listener.fileno()),
                    "--ready-fd",
                    str(ready_write),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(listener.fileno(), ready_write),
                env=dict(environment),
            )
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        assert process.stdin is not None
        process.stdin.write(spec + b"\n")
        process.stdin.flush()  # the pipe stays open: closing it is how the twin says stop
        return cls(process, ready_read)

    def wait_until_ready(self, deadline: float) -> None:
        answer = self._answer(deadline)
        if answer is None:
            raise FrontWorkerError(
                f"front worker {self.process.pid} not ready within {READY_TIMEOUT_S:.0f} s"
            )
        if answer == b"ready":
            return
        with contextlib.suppress(subprocess.TimeoutExpired):  # the pipe closed: the worker is exiting
            self.process.wait(timeout=5)
        code = self.process.returncode
        ended = "closed its ready pipe" if code is None else how_it_ended(code)
        raise FrontWorkerError(f"front worker {self.process.pid} {ended} before it was ready")

    def ask_to_settle(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):  # a worker that died answers nothing: settled() says so
                self.process.stdin.write(b"settle\n")
                self.process.stdin.flush()

    def settled(self, deadline: float) -> bool:
        """True when the worker said its impression buffer is empty before ``deadline``."""
        return self._answer(deadline) == b"settled"

    def _answer(self, deadline: float) -> bytes | None:
        """The worker's next line on its answer pipe; None when none came by ``deadline``, b"" when the
        pipe closed."""
        if self._answers.closed:
            return b""
        readable, _, _ = select.select([self._answers], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            return None
        line = b""
        while not line.endswith(b"\n"):  # unbuffered: one line is written at once, read it whole
            chunk = self._answers.read(1)
            if not chunk:
                break
            line += chunk
        return line.strip()

    def close(self) -> None:
        self._answers.close()


def _stop(workers: list[Worker]) -> None:
    """Asks every worker to stop (its stdin closes), then waits; a worker that hangs is killed."""
    for worker in workers:
        if worker.process.stdin is not None and not worker.process.stdin.closed:
            with contextlib.suppress(OSError):  # a worker already dead (a settle line it never read)
                worker.process.stdin.close()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        worker.close()


# -- the worker -----------------------------------------------------------------------------------
def serve(fd: int, ready_fd: int) -> None:
    from local_twin.functions import Functions
    from merchandiser.serving import runtime

    spec = json.loads(sys.stdin.buffer.readline())
    routes = [Route(method, resource, function) for method, resource, function in spec["routes"]]
    functions = Functions(spec["environments"])
    authorize = None
    if spec.get("access"):
        access = {
            (method, resource): MethodAccess(required, kind)
            for method, resource, required, kind in spec["access"]
        }
        # the keys are read from moto's API Gateway (AWS_ENDPOINT_URL), again whenever an unknown one shows
        apigateway = boto3.client("apigateway")
        authorize = GatewayAuth(access, lambda: enabled_key_values(apigateway)).check
    front = HttpFront(routes, functions.invoke, listener=socket.socket(fileno=fd), authorize=authorize)
    if any(route.method == WARM_UP[0] and f"/v1{route.resource}" == WARM_UP[1] for route in routes):
        front.handle(*WARM_UP, {}, None)  # imports the handlers and loads the model before any page
    front.start()
    with os.fdopen(ready_fd, "wb", buffering=0) as answers:
        answers.write(b"ready\n")
        for line in sys.stdin.buffer:  # until the twin closes the pipe (stop) or dies
            if line.strip() == b"settle":
                settled = runtime.wait_for_impressions(SETTLE_TIMEOUT_S)
                answers.write(b"settled\n" if settled else b"unsettled\n")
    # No new connection; kept-alive ones are told to close with their next answer; answers begun finish.
    front.drain(DRAIN_GRACE_S, STOP_TIMEOUT_S - DRAIN_GRACE_S - 2.0)
    runtime.wait_for_impressions(1.0)  # the pages' impressions still buffered, as a container's last act
    os._exit(0)  # idle keep-alive connections are dropped, as API Gateway does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_twin.front_workers", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the twin's listening socket, inherited")
    parser.add_argument("--ready-fd", type=int, required=True, help="where to say ready, inherited")
    args = parser.parse_args(argv)
    serve(args.fd, args.ready_fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
