"""Response bodies of the API, for its OpenAPI document (``python -m lambdas.openapi``).

They describe what the handlers return; handlers still return plain dicts, so a field added to a
response is never dropped (``extra="allow"``). The integration tests validate real responses
against these models, so the document cannot drift from the code unnoticed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Documented(BaseModel):
    model_config = ConfigDict(extra="allow")


class RecommendedItem(Documented):
    item_id: str
    score: float = Field(description="higher is better; 0 for an item placed by a rule (promoted, new)")
    reason: str = Field(description="why it is here, e.g. 'matches your taste', 'promoted', 'new arrival'")
    source: str = Field(description="the candidate source or rule that put it there")
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
