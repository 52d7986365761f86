"""Candidates: what one source proposes (``Proposal``), and ``merge``, which blends the proposals into one
candidate list with per-source quotas (``registry.SOURCES`` says which sources, in which order)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from merchandiser.catalog import ItemModel


@dataclass(frozen=True)
class Ask:
    """What a request asks every source for: at most ``k`` rows, within ``category`` when given."""

    k: int
    category: str | None = None
    allowed: np.ndarray | None = None  # per-row mask of the category's items

    @classmethod
    def of(cls, items: ItemModel, k: int, category: str | None = None) -> Ask:
        return cls(k, category, None if category is None else items.catalog.categories == category)


@dataclass(frozen=True)
class Proposal:
    """What one source proposes: item rows, best first, and their scores (higher is better)."""

    rows: np.ndarray
    scores: np.ndarray
    dense: np.ndarray | None = None  # the source's score of every item row, when it has one
    # or the rows it scores at all (ascending) and their scores, when that is fewer than the catalogue
    support: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def empty(cls) -> Proposal:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))

    def score_of(self, rows: np.ndarray, lookup: RowLookup | None = None) -> np.ndarray:
        """float64 per row: the source's score, NaN where it gives none: from ``dense`` or ``support`` when
        it has one (where a score of 0 is none), else from what it proposed (its scores as they are);
        ``lookup``: ``rows`` sorted once for every proposal scored against them (``merge``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.dense is not None:
            column = self.dense[rows].astype(np.float64)
            column[column == 0] = np.nan
            return column
        if self.support is None and lookup is not None:
            column = np.full(len(rows), np.nan)
            found, at = lookup.find(self.rows)
            column[at] = self.scores[found]
            return column
        known, values = self.support if self.support is not None else _by_row(self.rows, self.scores)
        column = np.full(len(rows), np.nan)
        if len(known):
            at = np.minimum(np.searchsorted(known, rows), len(known) - 1)
            found = known[at] == rows
            column[found] = values[at[found]]
        if self.support is not None:
            column[column == 0] = np.nan
        return column


@dataclass(frozen=True)
class RowLookup:
    """Where unique item rows are among ``rows``: one sort, shared by every proposal scored against them."""

    order: np.ndarray  # positions of ``rows`` in ascending row order
    ascending: np.ndarray  # rows[order]

    @classmethod
    def of(cls, rows: np.ndarray) -> RowLookup:
        order = np.argsort(rows, kind="stable")
        return cls(order, np.asarray(rows, dtype=np.int64)[order])

    def find(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of the ``wanted`` rows that are among ``rows``, their positions in ``rows``)."""
        if len(self.ascending) == 0:
            return np.zeros(len(wanted), dtype=bool), np.empty(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.ascending, wanted), len(self.ascending) - 1)
        found = self.ascending[at] == wanted
        return found, self.order[at[found]]


def _by_row(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    return np.asarray(rows, dtype=np.int64)[order], np.asarray(scores, dtype=np.float64)[order]


@dataclass(frozen=True)
class Candidates:
    rows: np.ndarray  # int64 item rows, unique
    scores: dict[str, np.ndarray]  # source -> float64 score per row, NaN where that source did not propose it
    sources: list[str]  # per row, the first source (in merge order) that proposed it

    def __len__(self) -> int:
        return len(self.rows)


def top_scores(
    scores: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    exclude: frozenset[int] = frozenset(),
    positive_only: bool = True,
    tie: np.ndarray | None = None,
) -> Proposal:
    """The ``k`` best rows of a dense score vector, equal scores settled by ``tie`` (lower first:
    ``ItemModel.tie_rank``; by row only without a model); the vector rides along."""
    scores = np.asarray(scores, dtype=np.float64)
    usable = scores > 0 if positive_only else np.isfinite(scores)
    if allowed is not None:
        usable &= allowed
    if exclude:
        usable[np.fromiter(exclude, dtype=np.int64, count=len(exclude))] = False
    rows = np.flatnonzero(usable)
    if k <= 0 or len(rows) == 0:
        return Proposal(np.empty(0, np.int64), np.empty(0, np.float64), scores)
    rows = rows[best_positions(scores[rows], k, rows if tie is None else np.asarray(tie)[rows])]
    return Proposal(rows.astype(np.int64), scores[rows], scores)


def top_sparse(
    support: tuple[np.ndarray, np.ndarray],
    k: int,
    allowed: np.ndarray | None = None,
    exclude: frozenset[int] = frozenset(),
    tie: np.ndarray | None = None,
) -> Proposal:
    """``top_scores`` of a score vector given by the rows it scores (ascending) and their scores: the
    ``k`` best positive ones, ``allowed`` and ``exclude`` as there; the support rides along."""
    known, values = support
    usable = values > 0
    if allowed is not None:
        usable &= allowed[known]
    found = best_of(known[usable], values[usable], k, exclude, tie)
    return Proposal(found.rows, found.scores, support=support)


# kth_smallest looks at every SAMPLE_STEP-th value first, on arrays of at least SAMPLE_MIN values and
# SAMPLE_RATIO times k (a content source's tens of thousands of placed items, for its thousand best).
SAMPLE_STEP = 8
SAMPLE_MIN = 8192
SAMPLE_RATIO = 16


def kth_smallest(values: np.ndarray, k: int) -> np.floating:
    """``np.partition(values, k - 1)[k - 1]`` (``1 <= k <= len(values)``), the same value, sooner on long
    arrays: the sample's ``2k / SAMPLE_STEP``-th smallest bounds it from above when at least ``k`` values
    are under that bound (checked; else the whole array is partitioned), and only those are partitioned."""
    if len(values) >= max(SAMPLE_MIN, SAMPLE_RATIO * k):
        sample = values[::SAMPLE_STEP]
        j = min(len(sample), 2 * (k // SAMPLE_STEP) + 16)
        bound = np.partition(sample, j - 1)[j - 1]
        under = values[values <= bound]  # no NaN: the partition puts them last, as it does below
        if len(under) >= k:
            return np.partition(under, k - 1)[k - 1]
    return np.partition(values, k - 1)[k - 1]


def best_positions(scores: np.ndarray, k: int, ties: np.ndarray) -> np.ndarray:
    """Positions of the ``k`` best ``scores``, best first, equal scores by ``ties`` (lower first); every
    position scoring as well as the k-th is kept until the tie-break, so the border is settled by it too."""
    positions = np.arange(len(scores))
    if len(scores) > k:
        kth = kth_smallest(-scores, k)
        positions = positions[-scores <= kth]
    return positions[np.lexsort((ties[positions], -scores[positions]))[:k]]


def merge(
    proposals: Mapping[str, Proposal],
    quotas: Mapping[str, int],
    k: int,
    exclude: frozenset[int] = frozenset(),
    blocked: np.ndarray | None = None,
) -> Candidates:
    """About ``k`` unique candidates: each source first fills its quota in the order given, then
    the remaining places go to the sources' next best items in the same order; neither the ``exclude``
    rows nor those ``blocked`` (a per-row mask: a set of tens of thousands would cost every request) are.

    Every candidate carries the score of every source that proposed it, whether or not that source's
    quota admitted it, and is tagged with the first source (in the order of ``proposals``) that proposed it.
    Vectorized over a boolean "taken" mask: this runs on every request with ~1,000 candidates.
    """
    names = list(proposals)
    n_items = 1 + max(
        [int(proposal.rows.max()) for proposal in proposals.values() if len(proposal.rows)]
        + [max(exclude, default=-1)]
    )
    taken = np.zeros(n_items, dtype=bool) if blocked is None else blocked[:n_items].astype(bool)
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

    # a score of 0 means "no signal", as if not proposed
    lookup = RowLookup.of(rows)
    scores = {name: proposal.score_of(rows, lookup) for name, proposal in proposals.items()}
    first = np.full(len(rows), len(names))
    for position in reversed(range(len(names))):
        first[~np.isnan(scores[names[position]])] = position
    first = np.where(first < len(names), first, picked_by)
    return Candidates(rows=rows, scores=scores, sources=[names[at] for at in first.tolist()])


def best_of(
    rows: np.ndarray, scores: np.ndarray, k: int, exclude: frozenset[int], tie: np.ndarray | None = None
) -> Proposal:
    """The ``k`` best of ``rows`` by ``scores`` (ties: ``tie``, as ``top_scores``), ``exclude`` skipped.
    Only the head that can hold them is looked at further: the ``k + len(exclude)`` best scores and any
    equal to the last of them (a content source scores tens of thousands of placed items per page)."""
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if k <= 0 or len(rows) == 0:
        return Proposal.empty()
    head = k + len(exclude)
    if len(scores) > head:
        kth = kth_smallest(-scores, head)
        keep = -scores <= kth
        rows, scores = rows[keep], scores[keep]
    if exclude:
        keep = ~np.isin(rows, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
        rows, scores = rows[keep], scores[keep]
        if len(rows) == 0:
            return Proposal.empty()
    best = best_positions(scores, k, rows if tie is None else np.asarray(tie)[rows])
    return Proposal(rows[best], scores[best])


def static_top(
    items: ItemModel, key: str, scores: np.ndarray, k: int, exclude: frozenset[int], dense: bool
) -> Proposal:
    """The ``k`` best rows of a static score vector (positive scores only), ``exclude`` skipped; its order
    is sorted once per model and key (``ItemModel.static_order``, ties by ``tie_rank``), a request only
    skips exclusions."""
    head = items.static_order(key, scores)[: k + len(exclude)]
    if exclude:
        head = head[~np.isin(head, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))]
    head = head[:k]
    return Proposal(head.astype(np.int64), scores[head].astype(np.float64), scores if dense else None)
