"""The twin's Lambda service: the real handlers, invoked in-process with their deployed environment.

moto cannot run function code without Docker, so the twin imports each handler module and calls it
with the event shape AWS would send and the environment the stack gave the function.

The environment is process-wide, so functions take turns: invocations of one function share its
environment and run together, as that function's concurrent containers would in AWS, while another
function's invocations wait until they are done, and a function that is waiting goes before newcomers
of the running one, so the event processor is never starved by a stream of page requests. Each turn
sets only the variables the function changes and puts them back after it.

Like AWS, the twin gives each concurrent invocation a container of its own: a handler module loaded
once per container, so that module-level state (Powertools' resolver keeps the current event and its
route's arguments on itself) is never shared by two requests at once. A container is kept warm for
the next invocation; the core library below the handlers is loaded once per process.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
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


_CONTAINER_NUMBERS = itertools.count(2)  # container 1 of a function is its module as imported


def load_container(module: str) -> Handler:
    """The handler of a new container of ``module``: the module run again under a name of its own
    (registered, so that annotations and caches resolve as for any module), its imports shared."""
    found = importlib.util.find_spec(module)
    name = f"{module}__container{next(_CONTAINER_NUMBERS)}"
    spec = importlib.util.spec_from_file_location(name, found.origin) if found and found.origin else None
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(module)
    copy = importlib.util.module_from_spec(spec)
    sys.modules[name] = copy
    spec.loader.exec_module(copy)
    handler: Handler = copy.handler
    return handler


class Functions:
    def __init__(
        self,
        environments: Mapping[str, Mapping[str, str]],
        overrides: Mapping[str, str] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        modules: Mapping[str, str] | None = None,
    ):
        """``environments``: function key -> the environment it was deployed with; ``handlers``: function
        key -> one handler, shared by every invocation (tests); ``modules``: function key -> handler
        module, for those not in ``HANDLER_MODULES``."""
        self._environments = {key: {**env, **(overrides or {})} for key, env in environments.items()}
        self._shared: dict[str, Handler] = dict(handlers or {})
        self._modules = {**HANDLER_MODULES, **(modules or {})}
        self._warm: dict[str, list[Handler]] = {}  # function key -> its idle containers' handlers
        self._containers = Counter[str]()  # function key -> containers loaded
        self._imports = threading.Lock()
        self._turns = threading.Condition()
        self._running_key: str | None = None
        self._running = 0
        self._waiting = Counter[str]()
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
            handler = self._claim(key)
            try:
                return handler(event, LambdaContext(function_name=f"merchandiser-{key}"))
            finally:
                self._release(key, handler)
                if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
                    # Disabled metrics are never flushed, so Powertools keeps them (all handlers share one
                    # set) and prints the set anyway once a metric holds 100 values: forget them per call.
                    Metrics().clear_metrics()

    @contextmanager
    def _turn(self, key: str) -> Iterator[None]:
        with self._turns:
            self._waiting[key] += 1
            self._turns.wait_for(lambda: self._may_run(key))
            self._waiting[key] -= 1
            if self._running == 0:
                self._enter_environment(key)
            self._running += 1
        try:
            yield
        finally:
            with self._turns:
                self._running -= 1
                if self._running == 0:
                    self._leave_environment()
                    self._turns.notify_all()

    def _may_run(self, key: str) -> bool:
        if self._running == 0:
            return True
        others_waiting = any(count for waiting, count in self._waiting.items() if waiting != key)
        return self._running_key == key and not others_waiting

    def _enter_environment(self, key: str) -> None:
        environment = self._environments[key]
        self._saved = {name: os.environ.get(name) for name, value in environment.items()}
        for name, value in environment.items():
            if self._saved[name] != value:
                os.environ[name] = value
        self._running_key = key

    def _leave_environment(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            elif os.environ.get(name) != value:
                os.environ[name] = value
        self._saved = {}
        self._running_key = None

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

    def containers(self, key: str) -> int:
        """How many containers function ``key`` has loaded (as many as it ever ran at once)."""
        return self._containers[key]

    def _claim(self, key: str) -> Handler:
        """An idle container's handler, else a new container's (loaded inside the function's turn:
        Powertools reads the environment at import)."""
        if key in self._shared:
            return self._shared[key]
        with self._imports:
            warm = self._warm.setdefault(key, [])
            if warm:
                return warm.pop()
            self._containers[key] += 1
            first = self._containers[key] == 1
        module = self._modules[key]
        handler: Handler = importlib.import_module(module).handler if first else load_container(module)
        return handler

    def _release(self, key: str, handler: Handler) -> None:
        if key not in self._shared:
            with self._imports:
                self._warm[key].append(handler)
