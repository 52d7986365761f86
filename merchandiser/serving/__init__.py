"""Serving: a request becomes a page (retrieval → ranking → re-ranking in one process), with the model
loaded once per container, fallbacks for every broken part, and the stage timings each request reports;
and what staff read of it (``staff``: the live model's evaluation, a shopper's events, catalogue search)."""

from merchandiser.serving import runtime
from merchandiser.serving.metrics import emit, metric_suffix, new_report
from merchandiser.serving.model import LAST_RESORT_ITEMS, LoadedModel, Model, last_resort_model, load_model
from merchandiser.serving.recommender import CANDIDATES, SURFACES, Recommender
from merchandiser.serving.report import (
    FALLBACKS,
    FEATURE_STORE,
    INDEX,
    MODEL,
    RANKER,
    RANKING,
    RERANKING,
    RETRIEVAL,
    STAGES,
    STORE,
    ServingReport,
)
from merchandiser.serving.staff import (
    ENGAGEMENT_HOURS,
    MAX_SEARCH_RESULTS,
    gate_decision,
    model_summary,
    search_items,
    shopper_events,
)

__all__ = [
    "CANDIDATES",
    "ENGAGEMENT_HOURS",
    "FALLBACKS",
    "FEATURE_STORE",
    "INDEX",
    "LAST_RESORT_ITEMS",
    "MAX_SEARCH_RESULTS",
    "MODEL",
    "RANKER",
    "RANKING",
    "RERANKING",
    "RETRIEVAL",
    "STAGES",
    "STORE",
    "SURFACES",
    "LoadedModel",
    "Model",
    "Recommender",
    "ServingReport",
    "emit",
    "gate_decision",
    "last_resort_model",
    "load_model",
    "metric_suffix",
    "model_summary",
    "new_report",
    "runtime",
    "search_items",
    "shopper_events",
]
