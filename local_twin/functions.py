"""The twin's Lambda service: the real handlers, invoked in-process with their deployed environment.

moto cannot run function code without Docker, so the twin imports each handler module and calls it
with the event shape AWS would send and the environment the stack gave the function.

A Lambda container serves one request at a time, and so does each of the twin's processes: the twin's
own and each front worker (``local_twin.front_workers``) is one container of every function. Invocations
take turns, first come first served (so the event processor waits behind at most the pages queued before
it, never behind a stream of them), each in its function's environment, which is process-wide: a turn
sets only the variables the function changes and puts them back after it. Concurrency comes from the
front's worker processes, as it comes from containers in AWS. Two requests at once in one process would
share what the handlers and the core library keep in module globals, which nothing in AWS shares:
Powertools' resolver keeps the current event and its route's arguments on itself, and a page served
beside another once got the other's answer or a 500 (``KeyError: '_route_args'``).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics

# With metrics disabled (the twin), a handler that added none still "flushes" and Powertools warns.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

HANDLER_MODULES = {
    "retrieval": "lambdas.retrieval.handler",
    "ranking": "lambdas.ranking.handler",
    "reranking": "lambdas.reranking.handler",
    "events_api": "lambdas.events_api.handler",
    "catalog": "lambdas.catalog.handler",
    "experiments": "lambdas.experiments.handler",
    "event_processor": "lambdas.event_processor.handler",
    "trending_compactor": "lambdas.trending_compactor.handler",
    "start_training": "lambdas.start_training.handler",
    "publish": "lambdas.publish.handler",
    "erasure": "lambdas.erasure.handler",
    "experiment_report": "lambdas.experiment_report.handler",
}

# A twin-only fault (the load test's slow model load): seconds each model load of a serving function
# waits first, from that function's environment. Read only by the twin's wrapper below: production
# code has no such delay.
MODEL_LOAD_DELAY = "TWIN_MODEL_LOAD_DELAY_SECONDS"


def delay_model_loads() -> None:
    """Wraps serving's model loader (once per process) so that a model load first waits the invoked
    function's ``TWIN_MODEL_LOAD_DELAY_SECONDS``; called inside a function's turn, as the handler
    imports serving there."""
    from merchandiser.serving import runtime

    load = runtime.load_model
    if getattr(load, "delayed_by_twin", False):
        return

    def delayed(*args: Any, **kwargs: Any) -> Any:  # the loader's own arguments, whatever they are
        delay = float(os.environ.get(MODEL_LOAD_DELAY) or 0.0)  # the invoked function's
        if delay > 0:
            time.sleep(delay)
        return load(*args, **kwargs)

    delayed.delayed_by_twin = True  # type: ignore[attr-defined]
    runtime.load_model = delayed  # type: ignore[assignment]


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class Functions:
    def __init__(
        self,
        environments: Mapping[str, Mapping[str, str]],
        overrides: Mapping[str, str] | None = None,
        handlers: Mapping[str, Handler] | None = None,
    ):
        """``environments``: function key -> the environment it was deployed with; ``handlers``: function
        key -> handler, for those not imported from ``HANDLER_MODULES``."""
        self._environments = {key: {**env, **(overrides or {})} for key, env in environments.items()}
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._imports = threading.Lock()
        self._turns = threading.Condition()
        self._running = False
        self._queue: deque[object] = deque()  # the waiting invocations' tickets, first come first
        self._saved: dict[str, str | None] = {}  # what the running turn changed: name -> value before

    def environment(self, key: str) -> dict[str, str]:
        """The environment function ``key`` runs with now."""
        return dict(self._environments[key])

    def set_environment(self, key: str, **values: str) -> None:
        self._environments[key] = {**self._environments[key], **values}

    def environments(self) -> dict[str, dict[str, str]]:
        """Each function's environment as it is invoked now, by function key."""
        return {key: dict(environment) for key, environment in self._environments.items()}

    def invoke(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        with self._turn(key):  # imported inside its turn: Powertools reads the environment at import
            if MODEL_LOAD_DELAY in self._environments[key]:
                delay_model_loads()
            try:
                return self._handler(key)(event, LambdaContext(function_name=f"merchandiser-{key}"))
            finally:
                if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
                    # Disabled metrics are never flushed, so Powertools keeps them (all handlers share one
                    # set) and prints the set anyway once a metric holds 100 values: forget them per call.
                    Metrics().clear_metrics()

    @contextmanager
    def _turn(self, key: str) -> Iterator[None]:
        ticket = object()
        with self._turns:
            self._queue.append(ticket)
            self._turns.wait_for(lambda: self._may_run(ticket))
            self._queue.popleft()
            self._running = True
            self._enter_environment(key)
        try:
            yield
        finally:
            with self._turns:
                self._leave_environment()
                self._running = False
                self._turns.notify_all()

    def _may_run(self, ticket: object) -> bool:
        """Nothing runs and no invocation came before this one."""
        return not self._running and self._queue[0] is ticket

    def _enter_environment(self, key: str) -> None:
        environment = self._environments[key]
        self._saved = {name: os.environ.get(name) for name, value in environment.items()}
        for name, value in environment.items():
            if self._saved[name] != value:
                os.environ[name] = value

    def _leave_environment(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            elif os.environ.get(name) != value:
                os.environ[name] = value
        self._saved = {}

    @staticmethod
    def cold_start() -> None:
        """Every function starts cold, as after a deployment: the clients and models the handler modules
        and the core library cached (``functools.cache``) are dropped, so none still points at another
        twin's moto server (tests start more than one twin in a process)."""
        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith(("lambdas.", "merchandiser.")):
                continue
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear) and getattr(value, "__module__", None) == name:
                    clear()
        runtime = sys.modules.get("merchandiser.serving.runtime")
        if runtime is not None:
            runtime.reset()  # also the overlay and last-resort models it keeps outside a cache

    def _handler(self, key: str) -> Handler:
        with self._imports:
            if key not in self._handlers:
                self._handlers[key] = importlib.import_module(HANDLER_MODULES[key]).handler
            return self._handlers[key]
