"""The catalogue as the model knows it: one row per item, the row numbering every item array shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CATALOG_COLUMNS = ("item_ids", "titles", "categories", "brands", "prices", "created_at", "in_stock")


@dataclass(frozen=True)
class Catalog:
    item_ids: np.ndarray
    titles: np.ndarray
    categories: np.ndarray
    brands: np.ndarray
    prices: np.ndarray
    created_at: np.ndarray
    in_stock: np.ndarray
    row_of: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_of", {item: row for row, item in enumerate(self.item_ids.tolist())})

    def __len__(self) -> int:
        return len(self.item_ids)

    def save(self, path: Path) -> None:
        # compressed: ids and titles are fixed-width unicode, mostly padding, and the layer size is capped
        np.savez_compressed(path, **{name: getattr(self, name) for name in CATALOG_COLUMNS})

    @classmethod
    def load(cls, path: Path) -> Catalog:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(**{name: arrays[name] for name in CATALOG_COLUMNS})
