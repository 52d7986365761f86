"""Serving: a request becomes a page (retrieval → ranking → re-ranking in one process), with the model
loaded once per container, fallbacks for every broken part, and the stage timings each request reports."""

from merchandiser.serving import runtime
from merchandiser.serving.metrics import emit, metric_suffix, new_report
from merchandiser.serving.model import LAST_RESORT_ITEMS, LoadedModel, Model, last_resort_model, load_model
from merchandiser.serving.recommender import CANDIDATES, OUT_OF_STOCK, SURFACES, Recommender
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

__all__ = [
    "CANDIDATES",
    "FALLBACKS",
    "FEATURE_STORE",
    "INDEX",
    "LAST_RESORT_ITEMS",
    "MODEL",
    "OUT_OF_STOCK",
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
    "last_resort_model",
    "load_model",
    "metric_suffix",
    "new_report",
    "runtime",
]
