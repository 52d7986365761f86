"""Request bodies of the API, validated by Powertools before a handler runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from merchandiser.api import MAX_K
from merchandiser.schemas import ID_PATTERN, Event, EventFields

ItemIdField = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MAX_LIST = 1000
MAX_EVENTS_PER_REQUEST = 500


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_ids: list[ItemIdField] = Field(min_length=1, max_length=MAX_LIST)
    k: int | None = Field(default=None, ge=1, le=MAX_LIST)


class ScoredItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: ItemIdField
    score: float


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ScoredItem] = Field(min_length=1, max_length=MAX_LIST)
    k: int = Field(default=20, ge=1, le=MAX_K)


class ItemUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    category: str = Field(default="unknown", min_length=1, max_length=128)
    brand: str = Field(default="", max_length=128)
    price: float | None = Field(default=None, ge=0)
    in_stock: bool = True


class IncomingEvent(EventFields):
    """An event as a browser sends it: the server fills in a missing event id and timestamp."""

    event_id: ItemIdField | None = None
    timestamp: datetime | None = None

    def complete(self, now: datetime) -> Event:
        fields = self.model_dump(exclude_none=True)
        fields.setdefault("event_id", str(uuid.uuid4()))
        fields.setdefault("timestamp", now)
        return Event.model_validate(fields)


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[IncomingEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)
