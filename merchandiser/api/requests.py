"""Request bodies of the API, validated by Powertools before a handler runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from merchandiser.api.resolver import MAX_K
from merchandiser.schemas import ID_PATTERN, Event, EventFields
from merchandiser.settings import RuleOptions

ItemIdField = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MAX_LIST = 1000
MAX_EVENTS_PER_REQUEST = 500
# Every number a request carries is finite and bounded: 1e300 or Infinity would break DynamoDB (at most
# 1e125), JSON on the stream and the arithmetic of scores.
MAX_PRICE = 1e9
MAX_SCORE = 1e12
Price = Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)]


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_ids: list[ItemIdField] = Field(min_length=1, max_length=MAX_LIST)
    k: int | None = Field(default=None, ge=1, le=MAX_LIST)


class ScoredItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: ItemIdField
    # NaN and infinities would make the order undefined and the response invalid JSON
    score: float = Field(ge=-MAX_SCORE, le=MAX_SCORE, allow_inf_nan=False)


class RerankRules(RuleOptions):
    """The rules of one rerank request; without them only purchases, stock and the category cap apply."""

    explore_item_ids: tuple[ItemIdField, ...] = Field(
        default=(), max_length=MAX_LIST, description="new items without interactions, to explore"
    )
    explore_slots: int = Field(default=1, ge=0, le=MAX_K, description="slots for explore_item_ids")
    seed: str | None = Field(
        default=None,
        max_length=128,
        description="picks the explored items (e.g. a page view id); default: the user id and UTC date",
    )


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ScoredItem] = Field(min_length=1, max_length=MAX_LIST)
    k: int = Field(default=20, ge=1, le=MAX_K)
    rules: RerankRules = Field(default_factory=RerankRules)


class ItemUpsert(BaseModel):
    """A catalogue update: the fields given replace the stored ones, the others are kept (``{"in_stock":
    false}`` alone is an update). A field cannot be removed, only replaced."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: str | None = Field(default=None, min_length=1, max_length=300)
    category: str | None = Field(default=None, min_length=1, max_length=128)
    brand: str | None = Field(default=None, max_length=128)
    price: Price | None = None
    in_stock: bool | None = None
    promoted: bool | None = Field(
        default=None,
        description="among the promoted items on every page until set false (kept across trainings)",
    )

    @model_validator(mode="after")
    def some_field(self) -> ItemUpsert:
        if not self.model_fields_set or all(getattr(self, name) is None for name in self.model_fields_set):
            raise ValueError("give at least one of title, category, brand, price, in_stock, promoted")
        return self


class IncomingEvent(EventFields):
    """An event as a browser sends it: the server fills in a missing event id and timestamp."""

    event_id: ItemIdField | None = None
    timestamp: datetime | None = None
    price: Price | None = None

    def complete(self, now: datetime) -> Event:
        fields = self.model_dump(exclude_none=True)
        fields.setdefault("event_id", str(uuid.uuid4()))
        fields.setdefault("timestamp", now)
        return Event.model_validate(fields)


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[IncomingEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)
