"""The simulated shoppers' ground truth: how relevant each item is to each shopper, r(user, item) in [0, 1].

Which truth is used depends on the data the twin was trained on (``truth_for_data``):

* The synthetic shop (a data dir holding ``_synthetic_shop.json``, which ``generate`` writes): its own
  latent model, redrawn from the same parameters (``synthetic_shop.latent_truth``). Relevance is the
  probability that the shop's own shoppers click an item they look at:
  ``r = sigmoid(CLICK_INTERCEPT + CLICK_SLOPE * z)``, z the standardised affinity ``taste . item``.
* Any other data: a taste model fitted from each shopper's history in the data dir. Category affinity is
  the shopper's event-weighted share of the item's category, Dirichlet-smoothed towards the shop's share
  (``ALPHA`` pseudo-events), as a lift over the shop's share; popularity is the item's percentile of
  event-weighted counts: ``r = sigmoid(FITTED_INTERCEPT + FITTED_LIFT * log(lift) + FITTED_POPULARITY *
  (percentile - 0.5))``. It knows what a shopper liked before, nothing finer.

An item outside the truth (added later with ``PUT /items``) is worth the shopper's mean relevance over
the catalogue (neither good nor bad), and its price is the catalogue's median price.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from merchandiser.schemas import EVENT_WEIGHTS
from training.channels import read_channels
from training.datasets.synthetic_shop import (
    CLICK_INTERCEPT,
    CLICK_SLOPE,
    PARAMETERS_FILE,
    LatentTruth,
    latent_truth,
)

ALPHA = 5.0  # pseudo-events pulling a short history towards the shop's category shares
FITTED_INTERCEPT, FITTED_LIFT, FITTED_POPULARITY = -2.0, 0.8, 1.5


class UnknownShopperError(KeyError):
    """A shopper the truth does not know: the simulator only sends shoppers it has tastes for."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


class ShopTruth(ABC):
    """Relevance and prices by id; subclasses answer for the rows they know."""

    description: str

    def __init__(self, user_ids: Sequence[str], item_ids: Sequence[str], price: np.ndarray):
        self.user_ids = list(user_ids)
        self.item_ids = list(item_ids)
        self._user_row = {user_id: row for row, user_id in enumerate(self.user_ids)}
        self._item_row = {item_id: row for row, item_id in enumerate(self.item_ids)}
        self._price = np.asarray(price, dtype=np.float64)
        known = self._price[np.isfinite(self._price) & (self._price > 0)]
        self._median_price = float(np.median(known)) if len(known) else 1.0

    def relevance(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """r(user, item) for each item, in [0, 1]."""
        user = self._user_row.get(user_id)
        if user is None:
            raise UnknownShopperError(user_id)
        rows = np.array([self._item_row.get(item_id, -1) for item_id in item_ids], dtype=np.int64)
        known = rows >= 0
        values = np.empty(len(rows), dtype=np.float64)
        values[known] = self._relevance_rows(user, rows[known])
        if not known.all():
            values[~known] = float(self._relevance_rows(user, np.arange(len(self.item_ids))).mean())
        return values

    def price(self, item_ids: Sequence[str]) -> np.ndarray:
        rows = [self._item_row.get(item_id, -1) for item_id in item_ids]
        prices = [self._price[row] if row >= 0 else np.nan for row in rows]
        return np.array([p if np.isfinite(p) and p > 0 else self._median_price for p in prices])

    @abstractmethod
    def _relevance_rows(self, user: int, items: np.ndarray) -> np.ndarray: ...


class SyntheticTruth(ShopTruth):
    """The synthetic shop's latent tastes: relevance is its own click model's probability."""

    def __init__(self, latent: LatentTruth, description: str = "the synthetic shop's latent model"):
        super().__init__(latent.user_ids, latent.item_ids, latent.price)
        self.latent = latent
        self.description = description

    @classmethod
    def from_parameters(cls, parameters: dict[str, object]) -> SyntheticTruth:
        names = ("n_users", "n_items", "n_days", "seed", "start")
        chosen = {name: parameters[name] for name in names if name in parameters}
        latent = latent_truth(**chosen)  # type: ignore[arg-type]
        label = ", ".join(f"{name} {value}" for name, value in chosen.items())
        return cls(latent, f"the synthetic shop's latent model ({label})")

    def _relevance_rows(self, user: int, items: np.ndarray) -> np.ndarray:
        mean, std = self.latent.affinity_scale
        affinity = self.latent.item_vectors[items].astype(np.float64) @ self.latent.tastes[user]
        return sigmoid(CLICK_INTERCEPT + CLICK_SLOPE * (affinity - mean) / std)


class FittedTruth(ShopTruth):
    """Category affinity and item popularity fitted from the shoppers' histories in a data dir."""

    def __init__(self, data_dir: Path):
        channels = read_channels(data_dir, data_dir if any(data_dir.glob("items.*")) else None)
        events, items = channels.interactions, channels.items
        item_ids = items["item_id"].astype(str).tolist()
        item_row = {item_id: row for row, item_id in enumerate(item_ids)}
        category_codes, categories = _codes(items["category"].astype(str).to_numpy())
        weight = events["event_type"].map(EVENT_WEIGHTS).fillna(1.0).to_numpy(np.float64)
        event_items = events["item_id"].map(item_row).to_numpy(np.int64)
        user_codes, user_ids = _codes(events["user_id"].astype(str).to_numpy())

        counts = np.bincount(event_items, weights=weight, minlength=len(item_ids))
        self._percentile = _percentile(counts)
        event_categories = category_codes[event_items]
        n_categories = len(categories)
        self._shop_share = np.bincount(event_categories, weights=weight, minlength=n_categories)
        self._shop_share = (self._shop_share + 1e-9) / (self._shop_share + 1e-9).sum()
        # Each shopper's category weights as a compact sorted table: (user, category) keys with their sums.
        keys, inverse = np.unique(user_codes * n_categories + event_categories, return_inverse=True)
        self._pair_weight = np.bincount(inverse, weights=weight)
        self._pair_user, self._pair_category = keys // n_categories, keys % n_categories
        self._user_total = np.bincount(user_codes, weights=weight, minlength=len(user_ids))
        self._item_category = category_codes
        super().__init__(user_ids.tolist(), item_ids, items["price"].to_numpy(np.float64))
        self.description = f"a taste model fitted from {data_dir} (category affinity + item popularity)"

    def _relevance_rows(self, user: int, items: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(self._pair_user, [user, user + 1])
        mine = np.zeros(len(self._shop_share))
        mine[self._pair_category[lo:hi]] = self._pair_weight[lo:hi]
        affinity = (mine + ALPHA * self._shop_share) / (self._user_total[user] + ALPHA)
        lift = np.log(affinity / self._shop_share)[self._item_category[items]]
        popularity = self._percentile[items] - 0.5
        return sigmoid(FITTED_INTERCEPT + FITTED_LIFT * lift + FITTED_POPULARITY * popularity)


def truth_for_data(data_dir: Path) -> ShopTruth:
    """The synthetic shop's own latent model when the dir was written by it, else a fitted taste model."""
    parameters = data_dir / PARAMETERS_FILE
    if parameters.is_file():
        return SyntheticTruth.from_parameters(json.loads(parameters.read_text()))
    return FittedTruth(data_dir)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), uniques


def _percentile(counts: np.ndarray) -> np.ndarray:
    """Each count's rank in [0, 1], ties sharing their mean rank (all unseen items are equally unknown)."""
    ordered = np.sort(counts)
    ranks = (np.searchsorted(ordered, counts, "left") + np.searchsorted(ordered, counts, "right") - 1) / 2
    return np.asarray(ranks / max(len(counts) - 1, 1))
