"""Response bodies of the API, for its OpenAPI document (``python -m lambdas.openapi``).

They describe what the handlers return; handlers still return plain dicts, so a field added to a
response is never dropped (``extra="allow"``). The integration tests validate real responses
against these models, so the document cannot drift from the code unnoticed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from merchandiser.experiments import Experiment
from merchandiser.reranking import DISCOVERY, NEW_ARRIVAL, PROMOTED, REASONS
from merchandiser.retrieval import SOURCE_NAMES
from merchandiser.serving import OUT_OF_STOCK

# Read from the source registry and the page's rules, so the document lists every reason served.
REASON_TEXTS = sorted({*REASONS.values(), PROMOTED, NEW_ARRIVAL, OUT_OF_STOCK})
SOURCE_TEXTS = [*SOURCE_NAMES, "request", "rule", DISCOVERY]


class Documented(BaseModel):
    model_config = ConfigDict(extra="allow")


class RecommendedItem(Documented):
    item_id: str
    score: float = Field(description="higher is better; 0 for an item placed by a rule (promoted, new)")
    reason: str = Field(
        description="why it is here: one of "
        + ", ".join(f"'{text}'" for text in REASON_TEXTS)
        + ", or 'because you viewed <title>' / 'bought with <title>' for a neighbour of a recent item"
    )
    source: str = Field(
        description="the candidate source or rule that put it there: " + ", ".join(SOURCE_TEXTS)
    )
    title: str
    category: str
    in_stock: bool | None = Field(
        default=None, description="false on an item of a ranked list that is out of stock (placed last)"
    )


class RecommendationPage(Documented):
    recommendation_id: str = Field(description="quote it in events to attribute clicks and purchases")
    model_version: str
    experiment: str = Field(
        default="", description="the experiment covering this surface for the shopper; '' when none does"
    )
    variant: str = Field(
        description="the shopper's variant in that experiment; 'production' outside experiments"
    )
    surface: str
    user_id: str | None
    personalized: bool
    degraded: bool = Field(description="served with a fallback; degraded_reasons says which")
    degraded_reasons: list[str] = Field(default_factory=list)
    items: list[RecommendedItem]


class Health(Documented):
    status: Literal["ok", "degraded"]
    model_version: str | None
    items: int
    faults: list[str] = Field(default_factory=list)


class EventsAccepted(Documented):
    accepted: int
    event_ids: list[str]


class ItemStored(Documented):
    item_id: str
    stored: bool
    retrievable: bool  # in the catalogue overlay: served at once, before the next training
    updated_at: str
    revision: int = Field(description="how many updates the item's record has had")
    item: dict[str, str | float | bool] = Field(
        description="the item's catalogue fields after the update (the stored ones merged with those given)"
    )


class UserErased(Documented):
    user_id: str
    erased: bool
    erased_at: str | None = None
    tombstone: str | None = Field(default=None, description="where the erasure is recorded for training")


class ExperimentList(Documented):
    experiments: list[Experiment] = Field(description="every experiment, running or stopped, by name")


class ExperimentStopped(Documented):
    name: str
    status: Literal["stopped"]
    started_at: str | None = None
    stopped_at: str | None = None


class VariantFigures(Documented):
    users: int = Field(description="shoppers served at least one page of the variant")
    impressions: int = Field(description="pages served (one per recommendation_id)")
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: float = Field(description="price x quantity of the attributed purchases")
    ctr: float | None = Field(description="clicks per page")
    conversion: float | None = Field(description="purchases per page")
    revenue_per_impression: float | None
    coverage: float | None = Field(description="distinct items shown / catalogue size")


class Comparison(Documented):
    metric: Literal["ctr", "conversion", "revenue_per_impression"]
    variant: str
    baseline: str
    lift: float | None = Field(description="relative: variant / baseline - 1")
    ci_low: float | None
    ci_high: float | None
    p_value: float | None = Field(description="delta method over users, two-sided")


class ExperimentReport(Documented):
    experiment: str
    variants: dict[str, VariantFigures]
    comparisons: list[Comparison]
    sample_ratio_p_value: float | None = Field(description="users per variant against the declared shares")
    sample_ratio_mismatch: bool = Field(description="p < 0.001: the split is broken, trust no comparison")
    unattributed: dict[str, dict[str, int]] = Field(
        description="events credited to no page, per reason, as clicks, add_to_carts and purchases"
    )
    period: dict[str, str] = Field(description="the days of the impressions reported: start, end")
    engine: str = Field(description="duckdb (computed on the request) or athena (the daily job)")
    generated_at: str
    days: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per day of the period's last two weeks, per variant: pages, attributed events (24 h"
        " window), revenue, ctr, conversion (the KPI rows: GET /kpis)",
    )


# --- staff (admin, read-only): what the console shows ---------------------------------------------------
class ModelSummary(Documented):
    status: Literal["ok", "degraded"]
    model_version: str | None
    trained_at: str | None = None
    metrics: dict[str, dict[str, float]] = Field(
        description="offline metrics per evaluated model on the same split: 'pipeline' is the served page"
    )
    anchors: list[str] = Field(default_factory=list, description="models the served page is compared with")
    stages: list[str] = Field(
        default_factory=list, description="stages of the served page scored alone (ranker, union, sources)"
    )
    best_anchor: dict[str, Any] | None = Field(
        default=None, description="the anchor with the best gate metric, and the served page's ratio to it"
    )
    gate: dict[str, Any] | None = Field(description="the quality gate's decision on this model")
    gate_problem: str | None = Field(default=None, description="why there is no gate decision to show")
    faults: list[str] = Field(default_factory=list)


class ShopperEvent(Documented):
    event_id: str
    item_id: str
    title: str | None
    category: str | None
    event_type: str
    timestamp: str | None


class ShopperEvents(Documented):
    user_id: str
    known: bool = Field(description="the shopper has a trained profile or a session")
    attributes: dict[str, str]
    purchased: int
    events: list[ShopperEvent] = Field(description="the session's events, newest first (at most 50)")
    profile_recent: list[dict[str, Any]] = Field(description="the latest items of the trained profile")


class CatalogueItem(Documented):
    item_id: str
    title: str
    category: str
    brand: str
    price: float | None
    in_stock: bool
    promoted: bool
    new: bool = Field(description="explored as a new arrival, or added since the training")
    explored: bool = Field(description="gets exploration slots: no interactions, created recently")
    added_since_training: bool
    created_at: str | None
    events_7d: float = Field(description="weighted behaviour events over the last 7 days (trending counters)")


class ItemSearch(Documented):
    query: str | None
    new_only: bool
    matches: int
    items: list[CatalogueItem]


class StreamFigures(Documented):
    minutes: list[dict[str, Any]] = Field(
        description="events processed per minute, the last 60, oldest first"
    )
    events_last_hour: int
    events_per_minute: float
    processed_at: str | None = Field(description="when the processor last applied an event")
    newest_event_at: str | None = Field(description="the newest event's own time in that batch")
    seconds_since_processed: float | None
    lag_seconds: float | None = Field(
        description="processed_at minus newest_event_at: how fresh the stream is"
    )


class KpiDocument(Documented):
    computed_at: str
    period: dict[str, str]
    final_through: str | None = Field(
        default=None, description="the last day whose figures are final (later days may still gain events)"
    )
    catalogue_size: int | None
    surfaces: dict[str, list[dict[str, Any]]] = Field(
        description="per surface, per day: impressions, clicks, purchases, revenue, ctr, conversion, coverage"
    )
    experiments: dict[str, list[dict[str, Any]]] = Field(description="per experiment, per day, per variant")
