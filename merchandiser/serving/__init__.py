"""Serving: a request becomes a page (retrieval → ranking → re-ranking in one process), with the model
loaded once per container, fallbacks for every broken part, the shopper's experiment variant
(``treatment``), one impression record per served page on the stream (``impressions``), and the stage
timings and metrics each request reports; and what staff read of it (``staff``: the live model's
evaluation, a shopper's events, catalogue search)."""

from merchandiser.serving import runtime
from merchandiser.serving.impressions import ImpressionLog, impression_record
from merchandiser.serving.metrics import emit, emit_page, metric_suffix, new_report
from merchandiser.serving.model import LAST_RESORT_ITEMS, LoadedModel, Model, last_resort_model, load_model
from merchandiser.serving.pages import serve_page
from merchandiser.serving.recommender import CANDIDATES, OUT_OF_STOCK, SURFACES, Recommender
from merchandiser.serving.report import (
    EXPERIMENTS,
    EXPLORATION,
    FALLBACKS,
    FEATURE_STORE,
    INDEX,
    MODEL,
    MODEL_VERSION,
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
from merchandiser.serving.treatment import PRODUCTION_TREATMENT, Arm, Treatment, interleave, treatment_for

__all__ = [
    "CANDIDATES",
    "ENGAGEMENT_HOURS",
    "EXPERIMENTS",
    "EXPLORATION",
    "FALLBACKS",
    "FEATURE_STORE",
    "INDEX",
    "LAST_RESORT_ITEMS",
    "MAX_SEARCH_RESULTS",
    "MODEL",
    "MODEL_VERSION",
    "OUT_OF_STOCK",
    "PRODUCTION_TREATMENT",
    "RANKER",
    "RANKING",
    "RERANKING",
    "RETRIEVAL",
    "STAGES",
    "STORE",
    "SURFACES",
    "Arm",
    "ImpressionLog",
    "LoadedModel",
    "Model",
    "Recommender",
    "ServingReport",
    "Treatment",
    "emit",
    "emit_page",
    "gate_decision",
    "impression_record",
    "interleave",
    "last_resort_model",
    "load_model",
    "metric_suffix",
    "model_summary",
    "new_report",
    "runtime",
    "search_items",
    "serve_page",
    "shopper_events",
    "treatment_for",
]
