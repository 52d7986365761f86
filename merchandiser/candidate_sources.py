"""Candidate sources: each proposes item rows with a score; ``merge`` blends them into one candidate list.

Sources:
- ``ann``: nearest items to the user vector in an hnswlib inner-product index over the ALS item factors.
- ``also_viewed``: items that co-occur with the shopper's history (item-to-item, shopper level).
- ``bought_together``: items bought in the same baskets as the shopper's most recent items.
- ``content``: items placed in the ALS space by their attributes (no interactions yet), searched exactly.
- ``trending``: what sells this week (short half-life).
- ``popularity``: recency-decayed best sellers, in the shopper's segment when known, optionally in a category.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import hnswlib
import numpy as np

from merchandiser.popularity import top_popular

ANN = "ann"
ALSO_VIEWED = "also_viewed"
BOUGHT_TOGETHER = "bought_together"
CONTENT = "content"
TRENDING = "trending"
POPULARITY = "popularity"
SOURCES: tuple[str, ...] = (ANN, ALSO_VIEWED, BOUGHT_TOGETHER, CONTENT, TRENDING, POPULARITY)

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
MIN_EF = 50


@dataclass(frozen=True)
class Proposal:
    """What one source proposes: item rows, best first, and their scores (higher is better)."""

    rows: np.ndarray
    scores: np.ndarray
    dense: np.ndarray | None = None  # the source's score of every item row, when it has one

    @classmethod
    def empty(cls) -> Proposal:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


@dataclass(frozen=True)
class Candidates:
    rows: np.ndarray  # int64 item rows, unique
    scores: dict[str, np.ndarray]  # source -> float64 score per row, NaN where that source did not propose it
    sources: list[str]  # per row, the first source (in merge order) that proposed it

    def __len__(self) -> int:
        return len(self.rows)


def build_index(item_factors: np.ndarray, seed: int) -> hnswlib.Index:
    """Inner-product HNSW index; labels are item rows. One thread so the same input gives the same file."""
    n_items, dim = item_factors.shape
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(
        max_elements=max(n_items, 1), M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, random_seed=seed
    )
    index.set_num_threads(1)
    if n_items:
        index.add_items(item_factors.astype(np.float32), np.arange(n_items, dtype=np.int64), num_threads=1)
    return index


def ann_source(
    index: hnswlib.Index,
    vector: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
) -> Proposal:
    """The ``k`` items with the largest inner product with ``vector``; ``allowed``: per-row boolean mask."""
    available = index.get_current_count() if allowed is None else int(np.count_nonzero(allowed))
    k = min(k, available)
    if k <= 0:
        return Proposal.empty()
    index.set_ef(max(k, MIN_EF))
    accept: Callable[[int], bool] | None = None
    if allowed is not None:
        mask = allowed

        def accept(label: int) -> bool:
            return bool(mask[label])

    query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    try:
        labels, distances = index.knn_query(query, k=k, num_threads=1, filter=accept)
    except RuntimeError:
        # the graph could not reach k allowed items (tiny or heavily filtered index): search exhaustively
        return _brute_force(index, query[0], k, allowed)
    # hnswlib's "ip" distance is 1 - inner product
    return Proposal(labels[0].astype(np.int64), 1.0 - distances[0].astype(np.float64))


def _brute_force(index: hnswlib.Index, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> Proposal:
    labels = np.asarray(index.get_ids_list(), dtype=np.int64)
    if allowed is not None:
        labels = labels[allowed[labels]]
    scores = np.asarray(index.get_items(labels), dtype=np.float32) @ vector if len(labels) else np.empty(0)
    order = np.argsort(-scores, kind="stable")[:k]
    return Proposal(labels[order], scores[order].astype(np.float64))


def popularity_source(
    popularity: np.ndarray,
    k: int,
    categories: np.ndarray | None = None,
    category: str | None = None,
    exclude: frozenset[int] = frozenset(),
) -> Proposal:
    rows, scores = top_popular(popularity, k, categories, category, exclude)
    return Proposal(rows, scores)


def top_scores(
    scores: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    exclude: frozenset[int] = frozenset(),
    positive_only: bool = True,
) -> Proposal:
    """The ``k`` best rows of a dense score vector (ties: lower row first); the vector rides along."""
    scores = np.asarray(scores, dtype=np.float64)
    usable = scores > 0 if positive_only else np.isfinite(scores)
    if allowed is not None:
        usable &= allowed
    if exclude:
        usable[np.fromiter(exclude, dtype=np.int64, count=len(exclude))] = False
    rows = np.flatnonzero(usable)
    if k <= 0 or len(rows) == 0:
        return Proposal(np.empty(0, np.int64), np.empty(0, np.float64), scores)
    if len(rows) > k:
        rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
    rows = rows[np.lexsort((rows, -scores[rows]))]
    return Proposal(rows.astype(np.int64), scores[rows], scores)


def merge(
    proposals: Mapping[str, Proposal],
    quotas: Mapping[str, int],
    k: int,
    exclude: frozenset[int] = frozenset(),
) -> Candidates:
    """About ``k`` unique candidates: each source first fills its quota in the order given, then
    the remaining places go to the sources' next best items in the same order.

    Every candidate carries the score of every source that proposed it, whether or not that source's
    quota admitted it, and is tagged with the first source (in the order of ``proposals``) that proposed it.
    Vectorized over a boolean "taken" mask: this runs on every request with ~1,000 candidates.
    """
    names = list(proposals)
    n_items = 1 + max(
        [int(proposal.rows.max()) for proposal in proposals.values() if len(proposal.rows)]
        + [len(proposal.dense) - 1 for proposal in proposals.values() if proposal.dense is not None]
        + [max(exclude, default=-1)]
    )
    taken = np.zeros(n_items, dtype=bool)
    if exclude:
        taken[np.fromiter(exclude, dtype=np.int64, count=len(exclude))] = True
    chosen: list[np.ndarray] = []
    chooser: list[np.ndarray] = []
    total = 0
    for limits in ({name: quotas.get(name, 0) for name in names}, dict.fromkeys(names, k)):
        for position, name in enumerate(names):
            room = min(limits[name], k - total)
            if room <= 0:
                continue
            # rows of one proposal are unique, so the first free ones are the source's next best
            rows = proposals[name].rows
            picked = rows[~taken[rows]][:room]
            taken[picked] = True
            chosen.append(picked)
            chooser.append(np.full(len(picked), position))
            total += len(picked)
    rows = np.concatenate(chosen).astype(np.int64) if chosen else np.empty(0, np.int64)
    picked_by = np.concatenate(chooser) if chooser else np.empty(0, np.int64)

    scores: dict[str, np.ndarray] = {}
    for name, proposal in proposals.items():
        if proposal.dense is not None:
            column = proposal.dense[rows].astype(np.float64)
            column[column == 0] = np.nan  # a dense score of 0 means "no signal", as if not proposed
        else:
            lookup = np.full(n_items, np.nan)
            lookup[proposal.rows] = proposal.scores
            column = lookup[rows]
        scores[name] = column
    first = np.full(len(rows), len(names))
    for position in reversed(range(len(names))):
        first[~np.isnan(scores[names[position]])] = position
    first = np.where(first < len(names), first, picked_by)
    return Candidates(rows=rows, scores=scores, sources=[names[at] for at in first.tolist()])
