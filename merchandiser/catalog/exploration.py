"""What exploration has learnt of the model's items: per row, impressions and clicks in exploration slots
(the posteriors the event processor keeps, ``merchandiser.store.posteriors``), and the verdict on each.

- *exploring*: in the pool the exploration slots draw from (Thompson sampling over Beta(1 + clicks,
  1 + impressions - clicks), ``merchandiser.reranking.exploration``);
- *graduated*: at least ``graduate_impressions`` impressions and a posterior mean of at least
  ``graduate_ctr``: out of the pool and into the candidates (the ``graduated`` candidate source), until
  the next training learns it from its interactions like any other item;
- *faded*: ``fade_impressions`` impressions without graduating, or so few clicks that even an optimistic
  estimate (posterior mean + 2 standard deviations) stays under ``graduate_ctr`` after
  ``graduate_impressions``: out of the pool, its slots go to items not yet judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from merchandiser.catalog.items import Catalog
from merchandiser.store import Posterior


@dataclass(frozen=True)
class ExplorationPolicy:
    graduate_ctr: float = 0.05
    graduate_impressions: int = 50
    fade_impressions: int = 500

    def __post_init__(self) -> None:
        if not 0.0 < self.graduate_ctr < 1.0:
            raise ValueError(f"graduate_ctr must be within (0, 1), got {self.graduate_ctr}")
        if not 1 <= self.graduate_impressions <= self.fade_impressions:
            raise ValueError("need 1 <= graduate_impressions <= fade_impressions")


@dataclass(frozen=True)
class Exploration:
    """Read on every page (each array over the whole catalogue): the derived arrays are computed once."""

    impressions: np.ndarray  # float64 per row: exploration impressions (0: never explored)
    clicks: np.ndarray  # float64 per row: clicks credited to those impressions
    graduated: np.ndarray  # bool per row
    faded: np.ndarray  # bool per row

    @classmethod
    def empty(cls, n_items: int) -> Exploration:
        zeros = np.zeros(n_items, dtype=np.float64)
        return cls(zeros, zeros, np.zeros(n_items, dtype=bool), np.zeros(n_items, dtype=bool))

    @cached_property
    def alpha(self) -> np.ndarray:
        return 1.0 + self.clicks

    @cached_property
    def beta(self) -> np.ndarray:
        return 1.0 + np.maximum(self.impressions - self.clicks, 0.0)

    @property
    def mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    @property
    def graduated_rows(self) -> np.ndarray:
        return np.flatnonzero(self.graduated).astype(np.int64)

    @cached_property
    def judged(self) -> np.ndarray:
        """Rows out of the exploration pool: graduated or faded."""
        return self.graduated | self.faded


def exploration_of(
    catalog: Catalog, posteriors: Mapping[str, Posterior], policy: ExplorationPolicy
) -> Exploration:
    """Per-row arrays of ``posteriors`` (item id -> counts; ids the catalogue does not hold are skipped)
    and each row's verdict under ``policy``."""
    n_items = len(catalog)
    impressions = np.zeros(n_items, dtype=np.float64)
    clicks = np.zeros(n_items, dtype=np.float64)
    row_of = catalog.row_of
    for item_id, posterior in posteriors.items():
        row = row_of.get(item_id)
        if row is not None:
            impressions[row] = max(posterior.impressions, 0)
            clicks[row] = min(max(posterior.clicks, 0), impressions[row])
    alpha, beta = 1.0 + clicks, 1.0 + impressions - clicks
    mean = alpha / (alpha + beta)
    spread = np.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1.0)))
    enough = impressions >= policy.graduate_impressions
    graduated = enough & (mean >= policy.graduate_ctr)
    hopeless = enough & (mean + 2.0 * spread < policy.graduate_ctr)
    faded = ~graduated & ((impressions >= policy.fade_impressions) | hopeless)
    return Exploration(impressions, clicks, graduated, faded)
