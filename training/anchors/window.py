"""One time window's events as arrays, and what every tuned anchor reads from them.

A window is the events before ``now`` (the validation start while tuning, the test start when refitted);
its matrices, popularity vectors and purchases are computed on demand and cached, since every trial of
a search reads the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from merchandiser.catalog import Catalog, recency_decay
from training.fit import epoch_seconds, event_weights

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
# How a user x item cell sums its events: 1 once touched, or log(1 + summed event weight), which keeps
# the purchase > cart > click > view order without letting a heavy repeat buyer dominate an item.
MATRIX_KINDS = ("binary", "log_weight")
# Popularity counts events by their type's weight (``EVENT_WEIGHTS``) or one each.
WEIGHTINGS = ("event_weight", "count")


@dataclass(frozen=True)
class Window:
    """Events before ``now`` of the users in ``user_ids`` over ``n_items`` catalogue rows."""

    user_ids: np.ndarray  # str, sorted: the matrix row of a user is its position
    user: np.ndarray  # int64 per event: matrix row
    item: np.ndarray  # int64 per event: catalogue row
    weight: np.ndarray  # float64 per event: its type's weight
    time: np.ndarray  # float64 per event: epoch seconds
    purchase: np.ndarray  # bool per event
    now: float
    n_items: int
    created_at: np.ndarray  # float64 per catalogue row, NaN when unknown
    _cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_events(self) -> int:
        return len(self.item)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """What ``compute`` returns, computed once per window (every trial of a search reads it)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def remember(self, key: Any, value: Any) -> None:
        self._cache[key] = value

    def forget_models(self) -> None:
        """Drop what the anchors cached (Grams, EASE weights), keeping the window's own arrays: a fitted
        recommender holds what it needs, and the next family need not share memory with this one's."""
        for key in list(self._cache):
            if key not in ("row_of", "purchased", "last_seen") and not (
                isinstance(key, tuple) and key[0] == "matrix"
            ):
                del self._cache[key]

    def row_of(self) -> dict[str, int]:
        if "row_of" not in self._cache:
            self._cache["row_of"] = {str(user): row for row, user in enumerate(self.user_ids.tolist())}
        row_of: dict[str, int] = self._cache["row_of"]
        return row_of

    def matrix(self, kind: str) -> csr_matrix:
        """float64 (users, items): ``binary`` or ``log_weight`` (see ``MATRIX_KINDS``)."""
        key = ("matrix", kind)
        if key not in self._cache:
            shape = (len(self.user_ids), self.n_items)
            summed = csr_matrix((self.weight, (self.user, self.item)), shape=shape)  # duplicates add up
            summed.sum_duplicates()
            if kind == "binary":
                summed.data = np.ones_like(summed.data)
            elif kind == "log_weight":
                summed.data = np.log1p(summed.data)
            else:
                raise ValueError(f"unknown matrix kind {kind!r}: one of {', '.join(MATRIX_KINDS)}")
            self._cache[key] = summed
        matrix: csr_matrix = self._cache[key]
        return matrix

    def purchased(self) -> csr_matrix:
        """bool (users, items): what each user bought in the window (never recommended back)."""
        if "purchased" not in self._cache:
            bought = self.purchase
            shape = (len(self.user_ids), self.n_items)
            ones = np.ones(int(bought.sum()), dtype=bool)
            matrix = csr_matrix((ones, (self.user[bought], self.item[bought])), shape=shape)
            matrix.sum_duplicates()
            self._cache["purchased"] = matrix
        purchased: csr_matrix = self._cache["purchased"]
        return purchased

    def popularity(
        self, half_life_hours: float, weighting: str, window_hours: float | None = None
    ) -> np.ndarray:
        """float64 (items,): events' weights decayed by ``half_life_hours``, only those of the last
        ``window_hours`` when given."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}: one of {', '.join(WEIGHTINGS)}")
        weights = self.weight if weighting == "event_weight" else np.ones_like(self.weight)
        decayed = weights * recency_decay(self.time, self.now, half_life_hours / HOURS_PER_DAY)
        if window_hours is not None:
            decayed = np.where(self.time >= self.now - window_hours * SECONDS_PER_HOUR, decayed, 0.0)
        return np.bincount(self.item, weights=decayed, minlength=self.n_items)

    def last_seen(self) -> np.ndarray:
        """float64 (items,): each item's latest event (epoch s), -inf for an item never touched."""
        if "last_seen" not in self._cache:
            latest = np.full(self.n_items, -np.inf)
            np.maximum.at(latest, self.item, self.time)
            self._cache["last_seen"] = latest
        last: np.ndarray = self._cache["last_seen"]
        return last


def window_of(events: pd.DataFrame, catalog: Catalog, now: float) -> Window:
    """The events of ``events`` strictly before ``now`` (epoch s) on catalogue items."""
    seconds = epoch_seconds(events["timestamp"])
    rows = events["item_id"].map(catalog.row_of)
    keep = (seconds < now) & rows.notna().to_numpy()
    user_ids, user = np.unique(events["user_id"].to_numpy(dtype=str)[keep], return_inverse=True)
    return Window(
        user_ids=user_ids,
        user=user.astype(np.int64),
        item=rows.to_numpy()[keep].astype(np.int64),
        weight=event_weights(events)[keep],
        time=seconds[keep],
        purchase=(events["event_type"] == "purchase").to_numpy()[keep],
        now=float(now),
        n_items=len(catalog),
        created_at=catalog.created_at.astype(np.float64),
    )
