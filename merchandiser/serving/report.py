"""What one request did, beside its response: stage timings, candidates per source, fallbacks.

The recommender fills a ``ServingReport``; the handler turns it into metrics and a log line, the
serving bench reads its stage timings. It never goes into the JSON body (the response only says
that it was degraded and why).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Fallback kinds: each has its own metric dimension and its own reason in the response.
FEATURE_STORE = "feature_store"  # DynamoDB error or timeout: served without the shopper's features
RANKER = "ranker"  # ranker missing, corrupt or failing: candidates keep their retrieval order
INDEX = "index"  # ANN index (or item factors) missing, corrupt or failing: popularity candidates
MODEL = "model"  # the model dir is unusable: the last-resort list (runtime.last_resort_model)
EXPERIMENTS = "experiments"  # the experiments table unreadable: the last known experiments (none: production)
# the shopper's variant pins a model version this container has not loaded: the loaded one serves
MODEL_VERSION = "model_version"
# the exploration posteriors unreadable: the last ones read (none: every new item drawn from Beta(1, 1))
EXPLORATION = "exploration"
FALLBACKS = (FEATURE_STORE, RANKER, INDEX, MODEL, EXPERIMENTS, MODEL_VERSION, EXPLORATION)

# Stage names, in request order.
STORE = "store"
RETRIEVAL = "retrieval"
RANKING = "ranking"
RERANKING = "reranking"
STAGES = (STORE, RETRIEVAL, RANKING, RERANKING)

Span = Callable[[str], AbstractContextManager[Any]]


@dataclass
class ServingReport:
    """``span`` opens a tracing subsegment per stage (the handler passes the X-Ray one)."""

    span: Span | None = None
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    candidates: dict[str, int] = field(default_factory=dict)  # source -> candidates it put in
    fallbacks: list[str] = field(default_factory=list)  # kinds, in the order they happened, unique
    # an interleaved page: per item, in page order, the team ("A" or "B") its ranker plays for
    teams: list[str] | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        with self.span(f"## {name}") if self.span else nullcontext():
            try:
                yield
            finally:
                self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - started

    def fallback(self, kind: str, detail: str) -> None:
        """Records (once per request and kind) and logs a fallback that this request is served with."""
        if kind not in FALLBACKS:
            raise ValueError(f"unknown fallback kind {kind!r}")
        if kind in self.fallbacks:
            return
        self.fallbacks.append(kind)
        logger.warning("serving with a fallback", extra={"fallback": kind, "detail": detail})

    def count_candidates(self, sources: list[str]) -> None:
        for source, count in Counter(sources).items():
            self.candidates[source] = self.candidates.get(source, 0) + count

    @property
    def degraded(self) -> bool:
        return bool(self.fallbacks)
