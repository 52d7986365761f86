"""Events as the training job reads them: epoch seconds, catalogue rows, implicit-feedback weights, and the
recency-weighted popularity lists (``ListSettings``: popularity, trending, recent popularity) computed over
them once per window (``EventArrays``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from merchandiser.catalog import Catalog, decayed_popularity
from merchandiser.schemas import EVENT_WEIGHTS

NANOS_PER_SECOND = 1_000_000_000


def epoch_seconds(stamps: pd.Series | pd.Timestamp) -> Any:
    """UTC timestamps -> float epoch seconds (array for a Series)."""
    if isinstance(stamps, pd.Timestamp):
        return stamps.value / NANOS_PER_SECOND
    return stamps.astype("int64").to_numpy() / NANOS_PER_SECOND


def item_rows(events: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    """int64 catalogue row of each event's item, -1 for an item the catalogue lacks (one hash lookup
    over the column: a dict ``map`` per call cost seconds on a few hundred thousand events)."""
    return pd.Index(catalog.item_ids).get_indexer(events["item_id"].astype(str)).astype(np.int64)


def event_weights(
    interactions: pd.DataFrame, weights_by_type: Mapping[str, float] | None = None
) -> np.ndarray:
    """Implicit-feedback weight of each event: ``weights_by_type`` (``EVENT_WEIGHTS`` by default), a rating
    scaled by its value / 5."""
    table = EVENT_WEIGHTS if weights_by_type is None else weights_by_type
    # one lookup per distinct type (a ``map`` over the column costs seconds on millions of events)
    codes, types = pd.factorize(interactions["event_type"])
    per_type = np.array([table.get(kind, np.nan) for kind in types], dtype=np.float64)
    weights = np.where(codes >= 0, per_type[codes] if len(per_type) else np.nan, np.nan)
    if "value" in interactions.columns:
        rating = (interactions["event_type"] == "rating").to_numpy()
        values = interactions["value"].to_numpy(dtype=np.float64)
        weights = np.where(rating & ~np.isnan(values), weights * values / 5.0, weights)
    return weights


HOURS_PER_DAY = 24.0
WEIGHTINGS = ("event_weight", "count")  # how a simple list counts an event


@dataclass(frozen=True)
class ListSettings:
    """A recency-weighted popularity list: events decayed by ``half_life_hours``, weighted by their type's
    default weight (``schemas.EVENT_WEIGHTS``) or counted once, only those of the last ``window_hours``."""

    half_life_hours: float
    weighting: str = "event_weight"
    window_hours: float | None = None

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {self.weighting!r}: one of {', '.join(WEIGHTINGS)}")
        if self.half_life_hours <= 0:
            raise ValueError(f"half_life_hours must be positive, got {self.half_life_hours}")


@dataclass(frozen=True)
class EventArrays:
    """The events on catalogue items as arrays, read once: every list a search tries is a sum over them."""

    rows: np.ndarray  # int64 item row per event
    weights: np.ndarray  # float64 default weight of the event's type
    seconds: np.ndarray  # float64 epoch seconds
    n_items: int

    @classmethod
    def of(cls, interactions: pd.DataFrame, catalog: Catalog) -> EventArrays:
        return cls.with_known(interactions, catalog)[0]

    @classmethod
    def with_known(cls, interactions: pd.DataFrame, catalog: Catalog) -> tuple[EventArrays, np.ndarray]:
        """``of``, and which of the frame's events it holds (those on catalogue items)."""
        rows = item_rows(interactions, catalog)
        known = rows >= 0
        arrays = cls(
            rows=rows[known],
            weights=event_weights(interactions)[known],
            seconds=epoch_seconds(interactions["timestamp"])[known],
            n_items=len(catalog),
        )
        return arrays, known

    def subset(self, keep: np.ndarray) -> EventArrays:
        return EventArrays(self.rows[keep], self.weights[keep], self.seconds[keep], self.n_items)

    def before(self, now: float) -> EventArrays:
        return self.subset(self.seconds < now)

    def scores(self, now: float, settings: ListSettings) -> np.ndarray:
        """float32 (n_items,): the list's score of every item at ``now``.

        The window and the decay are measured back from the latest event at or before ``now``, not from
        ``now`` itself: a quiet night or weekend before the cut (a shop that does not trade on Saturdays)
        must neither empty a six-hour window nor decay a one-hour half-life to float32 zeros, and the
        scores keep one scale whatever the hour of the cut (the ranker reads them as features).
        """
        weights = self.weights if settings.weighting == "event_weight" else np.ones_like(self.weights)
        past = self.seconds <= now
        latest = float(self.seconds[past].max()) if past.any() else now
        keep = np.ones(len(self.rows), dtype=bool)
        if settings.window_hours is not None:
            keep = self.seconds >= latest - settings.window_hours * 3600.0
        return decayed_popularity(
            self.rows[keep],
            weights[keep],
            self.seconds[keep],
            latest,
            settings.half_life_hours / HOURS_PER_DAY,
            self.n_items,
        )

    def last_seen(self) -> np.ndarray:
        """float64 (n_items,): each item's latest event, NaN for none."""
        latest = np.full(self.n_items, -np.inf)
        np.maximum.at(latest, self.rows, self.seconds)
        return np.where(np.isfinite(latest), latest, np.nan)
