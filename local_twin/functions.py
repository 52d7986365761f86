"""The twin's Lambda service: the real handlers, invoked in-process with their deployed environment.

moto cannot run function code without Docker, so the twin imports each handler module and calls it
with the event shape AWS would send and the environment the stack gave the function. One lock
serializes invocations (a Lambda container also serves one request at a time) because the
environment is process-wide.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping
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
        self, environments: Mapping[str, Mapping[str, str]], overrides: Mapping[str, str] | None = None
    ):
        """``environments``: function key -> the environment it was deployed with."""
        self._environments = {key: {**env, **(overrides or {})} for key, env in environments.items()}
        self._handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def environment(self, key: str) -> dict[str, str]:
        """The environment function ``key`` runs with now."""
        return dict(self._environments[key])

    def set_environment(self, key: str, **values: str) -> None:
        self._environments[key] = {**self._environments[key], **values}

    def invoke(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            saved = dict(os.environ)
            os.environ.update(self._environments[key])
            try:
                return self._handler(key)(event, LambdaContext(function_name=f"merchandiser-{key}"))
            finally:
                if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
                    # Disabled metrics are never flushed, so Powertools keeps them (all handlers share one
                    # set) and prints the set anyway once a metric holds 100 values: forget them per call.
                    Metrics().clear_metrics()
                os.environ.clear()
                os.environ.update(saved)

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

    def _handler(self, key: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        if key not in self._handlers:
            self._handlers[key] = importlib.import_module(HANDLER_MODULES[key]).handler
        return self._handlers[key]
