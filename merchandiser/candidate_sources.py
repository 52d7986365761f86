"""Candidate sources: each proposes item rows with a score; ``merge`` blends them into one candidate list.

Sources:
- ``ann``: nearest items to the user vector in an hnswlib inner-product index over the ALS item factors.
- ``popularity``: recency-decayed best sellers, optionally within a category.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import hnswlib
import numpy as np

from merchandiser.popularity import top_popular

ANN = "ann"
POPULARITY = "popularity"
SOURCES: tuple[str, ...] = (ANN, POPULARITY)

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
MIN_EF = 50


@dataclass(frozen=True)
class Proposal:
    """What one source proposes: item rows, best first, and their scores (higher is better)."""

    rows: np.ndarray
    scores: np.ndarray

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
    """
    chosen: dict[int, str] = {}
    cursors = dict.fromkeys(proposals, 0)

    def take(source: str, limit: int) -> None:
        rows = proposals[source].rows
        taken = 0
        while cursors[source] < len(rows) and taken < limit and len(chosen) < k:
            row = int(rows[cursors[source]])
            cursors[source] += 1
            if row in chosen or row in exclude:
                continue
            chosen[row] = source
            taken += 1

    for source in proposals:
        take(source, quotas.get(source, 0))
    for source in proposals:
        take(source, k)

    rows = np.fromiter(chosen, dtype=np.int64, count=len(chosen))
    scores: dict[str, np.ndarray] = {}
    for source, proposal in proposals.items():
        lookup = dict(zip(proposal.rows.tolist(), proposal.scores.tolist(), strict=True))
        scores[source] = np.array([lookup.get(row, np.nan) for row in rows.tolist()], dtype=np.float64)
    names = list(proposals)
    first = np.full(len(rows), len(names))
    for position in reversed(range(len(names))):
        first[~np.isnan(scores[names[position]])] = position
    tags = [
        names[position] if position < len(names) else chosen[row]
        for position, row in zip(first, rows.tolist(), strict=True)
    ]
    return Candidates(rows=rows, scores=scores, sources=tags)
