"""Item-side signals learnt by training beside the ALS factors, saved together in ``signals.npz``.

- ``trending``: interaction weight decayed with a short half-life (what is selling this week);
- ``also_viewed`` / ``bought_together``: co-occurrence neighbours (shopper level / basket level);
- ``content``: the attribute -> vector regression, and ``placed``: the rows whose vector came from it;
- ``segments``: popularity among the shoppers of one segment (``"country=France"``), for new shoppers;
- ``recent_popularity``: interaction weight decayed with the half-life the training job tuned for the
  shop (the ``recent_popularity`` source, a ranker feature, and the first key that breaks ties);
- ``last_seen``: each item's latest interaction (epoch s, NaN for none): the second tie-break key;
- ``item_anchor``: the item-item weights of a personal anchor (item-kNN or RP3beta), each item's row the
  weights it gives the others, when the training job serves that anchor (its fallback); empty otherwise.

A model written before ``recent_popularity``, ``last_seen`` and ``item_anchor`` existed loads with zeros,
NaN and an empty table for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from merchandiser.catalog.content import ContentModel
from merchandiser.catalog.neighbours import Neighbours

CONTENT_PREFIX = "content_"
ITEM_ANCHOR = "item_anchor"  # the arrays' prefix in signals.npz


@dataclass(frozen=True)
class Signals:
    trending: np.ndarray  # float32 (n_items,)
    also_viewed: Neighbours
    bought_together: Neighbours
    placed: np.ndarray  # bool (n_items,)
    content: ContentModel | None = None
    segments: dict[str, np.ndarray] = field(default_factory=dict)  # key -> float32 (n_items,)
    # empty when not given: zeros and NaN, so older models and hand-built test models need neither
    recent_popularity: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    last_seen: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # epoch s, NaN never
    item_anchor: Neighbours = field(default_factory=lambda: Neighbours.empty(0))

    def __post_init__(self) -> None:
        n_items = len(self.trending)
        if len(self.recent_popularity) == 0:
            object.__setattr__(self, "recent_popularity", np.zeros(n_items, np.float32))
        if len(self.last_seen) == 0:
            object.__setattr__(self, "last_seen", np.full(n_items, np.nan))
        if self.item_anchor.n_items == 0:
            object.__setattr__(self, "item_anchor", Neighbours.empty(n_items))
        if self.item_anchor.n_items != n_items:
            raise ValueError(f"the item anchor's table has {self.item_anchor.n_items} items, not {n_items}")

    @classmethod
    def empty(cls, n_items: int) -> Signals:
        return cls(
            trending=np.zeros(n_items, np.float32),
            also_viewed=Neighbours.empty(n_items),
            bought_together=Neighbours.empty(n_items),
            placed=np.zeros(n_items, bool),
        )

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "trending": self.trending.astype(np.float32),
            "recent_popularity": self.recent_popularity.astype(np.float32),
            "last_seen": self.last_seen.astype(np.float64),
            "placed": self.placed.astype(bool),
            **self.also_viewed.to_arrays("also_viewed"),
            **self.bought_together.to_arrays("bought_together"),
            **self.item_anchor.to_arrays(ITEM_ANCHOR),
            "segment_keys": np.array(sorted(self.segments), dtype=str),
            "segment_popularity": (
                np.vstack([self.segments[key] for key in sorted(self.segments)]).astype(np.float32)
                if self.segments
                else np.zeros((0, len(self.trending)), np.float32)
            ),
        }
        if self.content is not None:
            arrays.update({CONTENT_PREFIX + name: value for name, value in self.content.to_arrays().items()})
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # the model layer shares 250 MB with the deps

    @classmethod
    def load(cls, path: Path) -> Signals:
        with np.load(path, allow_pickle=False) as arrays:
            content_arrays = {
                name[len(CONTENT_PREFIX) :]: arrays[name]
                for name in arrays.files
                if name.startswith(CONTENT_PREFIX)
            }
            keys = arrays["segment_keys"].tolist()
            popularity = arrays["segment_popularity"]
            return cls(
                trending=arrays["trending"],
                also_viewed=Neighbours.from_arrays(arrays, "also_viewed"),
                bought_together=Neighbours.from_arrays(arrays, "bought_together"),
                placed=arrays["placed"].astype(bool),
                content=ContentModel.from_arrays(content_arrays) if content_arrays else None,
                segments={key: popularity[position] for position, key in enumerate(keys)},
                recent_popularity=_optional(arrays, "recent_popularity", np.float32),
                last_seen=_optional(arrays, "last_seen", np.float64),
                item_anchor=(
                    Neighbours.from_arrays(arrays, ITEM_ANCHOR)
                    if f"{ITEM_ANCHOR}_indptr" in arrays.files
                    else Neighbours.empty(0)
                ),
            )


def _optional(arrays: Any, name: str, dtype: type) -> np.ndarray:
    """An array a model written before it existed lacks: empty, which ``Signals`` fills in."""
    return np.asarray(arrays[name], dtype=dtype) if name in arrays.files else np.empty(0, dtype)
