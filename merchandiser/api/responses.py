"""Response bodies of the API, for its OpenAPI document (``python -m lambdas.openapi``).

They describe what the handlers return; handlers still return plain dicts, so a field added to a
response is never dropped (``extra="allow"``). The integration tests validate real responses
against these models, so the document cannot drift from the code unnoticed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from merchandiser.reranking import DISCOVERY, NEW_ARRIVAL, PROMOTED, REASONS
from merchandiser.retrieval import SOURCE_NAMES

# Read from the source registry and the page's rules, so the document lists every reason served.
REASON_TEXTS = sorted({*REASONS.values(), PROMOTED, NEW_ARRIVAL})
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


class RecommendationPage(Documented):
    recommendation_id: str = Field(description="quote it in events to attribute clicks and purchases")
    model_version: str
    variant: str = Field(description="the shopper's experiment variant")
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
    retrievable: bool  # in the catalogue overlay: served within seconds, before the next training
    updated_at: str


class UserErased(Documented):
    user_id: str
    erased: bool
    erased_at: str | None = None
    tombstone: str | None = Field(default=None, description="where the erasure is recorded for training")


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
    catalogue_size: int | None
    surfaces: dict[str, list[dict[str, Any]]] = Field(
        description="per surface, per day: impressions, clicks, purchases, revenue, ctr, conversion, coverage"
    )
    experiments: dict[str, list[dict[str, Any]]] = Field(description="per experiment, per day, per variant")
