"""The data contract: event types, their weights, and the behaviour event (schema version 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1

EventType = Literal["view", "click", "add_to_cart", "purchase", "rating"]
EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "rating")

# Implicit-feedback strength of one event: a purchase says far more than a view.
# A rating's weight is scaled by its value (1..5) / 5 where it is used.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "rating": 4.0,
}

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$"
MAX_EVENT_BYTES = 4096

# The stream also carries one impression record per served page (``merchandiser.serving.impressions``),
# marked by this field: not a behaviour event, so the event processor skips it and the archive keeps it
# under ``impressions/`` rather than ``events/``. Behaviour events have no such field.
RECORD_TYPE_FIELD = "record_type"
IMPRESSION_RECORD_TYPE = "impression"


def is_impression(document: Any) -> bool:
    """A decoded stream record that is an impression, not a behaviour event."""
    return isinstance(document, dict) and document.get(RECORD_TYPE_FIELD) == IMPRESSION_RECORD_TYPE


class EventFields(BaseModel):
    """Who did what to which item, and the optional details; shared by the stream and the API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(pattern=ID_PATTERN)
    event_type: EventType
    session_id: str | None = Field(default=None, pattern=ID_PATTERN)
    recommendation_id: str | None = Field(default=None, max_length=64)
    position: int | None = Field(default=None, ge=0, le=10_000)
    quantity: int | None = Field(default=None, ge=1, le=100_000)
    price: float | None = Field(default=None, ge=0)
    value: float | None = Field(default=None, ge=0, le=5)
    context: dict[str, str] | None = None


class Event(EventFields):
    """One behaviour event as it travels on the stream."""

    schema_version: Literal[1] = 1
    event_id: str = Field(pattern=ID_PATTERN)
    timestamp: datetime

    @field_validator("timestamp")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def weight(self) -> float:
        base = EVENT_WEIGHTS[self.event_type]
        if self.event_type == "rating" and self.value is not None:
            return base * self.value / 5.0
        return base

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
