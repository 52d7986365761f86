"""Retrieval: every registered source's proposals for a shopper merged into about 1,000 candidates, and
the item-based surfaces (similar items, bought together, popular)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.ann import ann_source
from merchandiser.retrieval.popularity import popularity_source
from merchandiser.retrieval.proposal import Ask, Candidates, Proposal, merge
from merchandiser.retrieval.registry import (
    ALSO_VIEWED,
    ANN,
    BOUGHT_TOGETHER,
    POPULARITY,
    SOURCE_SHARES,
    SOURCES,
    TRENDING,
)
from merchandiser.shopper import UserState

CANDIDATES = 1000


def proposals(
    items: ItemModel,
    user: UserState,
    k: int,
    category: str | None = None,
    shares: Mapping[str, float] | None = None,
) -> dict[str, Proposal]:
    """What every source proposes for ``user`` (at most ``k`` each), purchases left out; each source is
    told its quota of the ``k`` (``shares``, default the model's: ``model_shares``)."""
    shares = model_shares(items) if shares is None else shares
    ask = Ask.of(items, k, category)
    found = {
        source.name: source.propose(
            items, user, replace(ask, quota=math.ceil(shares.get(source.name, 0.0) * k))
        )
        for source in SOURCES
    }
    return {name: proposal for name, proposal in found.items() if proposal is not None}


def model_shares(items: ItemModel) -> dict[str, float]:
    """The source shares a model was trained with: those its training job chose (``source_shares`` in
    its manifest), the registry's for any source the manifest does not name (a model trained before the
    shares were tuned, or before a source existed)."""
    chosen = items.manifest.get("source_shares") or {}
    return {name: float(chosen.get(name, share)) for name, share in SOURCE_SHARES.items()}


def merge_proposals(
    found: Mapping[str, Proposal],
    k: int,
    exclude: frozenset[int],
    shares: Mapping[str, float] | None = None,
    blocked: np.ndarray | None = None,
) -> Candidates:
    """The proposals merged into ``k`` candidates, each source's quota its share of ``k``; ``shares``
    (source -> share of the ``k`` places it fills first) default to the registry's; a source a caller's
    shares leave out fills no place first, only what the others leave over."""
    shares = SOURCE_SHARES if shares is None else shares
    quotas = {source: math.ceil(shares.get(source, 0.0) * k) for source in found}
    return merge(found, quotas, k, exclude=exclude, blocked=blocked)


def candidates(
    items: ItemModel,
    user: UserState,
    k: int = CANDIDATES,
    category: str | None = None,
    exclude: frozenset[int] = frozenset(),
    shares: Mapping[str, float] | None = None,
    blocked: np.ndarray | None = None,
) -> Candidates:
    """Every source's proposals merged with their shares as quotas into ``k`` unique candidates; the
    shopper's purchases, the ``exclude`` rows and the rows ``blocked`` (a per-row mask; serving: items out
    of stock) are never among them; an experiment variant pins other ``shares`` (default: the model's own,
    ``model_shares``)."""
    shares = model_shares(items) if shares is None else shares
    found = proposals(items, user, k, category, shares)
    return merge_proposals(found, k, user.purchased | exclude, shares, blocked)


def candidates_for(items: ItemModel, user: UserState, rows: np.ndarray) -> Candidates:
    """A caller's own list (unique rows) as candidates, scored by every source as retrieval would."""
    rows = np.asarray(rows, dtype=np.int64)
    scores: dict[str, np.ndarray] = {}
    for source, proposal in proposals(items, user, 0).items():
        scores[source] = proposal.score_of(rows)  # what it scores at all: none proposed at k = 0
    if user.vector is not None:
        scores[ANN] = items.item_factors[rows].astype(np.float64) @ user.vector.astype(np.float64)
    scores[POPULARITY] = items.segment_popularity(user.segments)[rows].astype(np.float64)
    return Candidates(rows=rows, scores=scores, sources=["request"] * len(rows))


def popular(
    items: ItemModel,
    k: int,
    category: str | None = None,
    trending: bool = False,
    exclude: frozenset[int] = frozenset(),
) -> Candidates:
    source = TRENDING if trending else POPULARITY
    scores = items.signals.trending if trending else items.popularity
    proposal = popularity_source(scores, k, items.catalog.categories, category, exclude, tie=items.tie_rank)
    return merge({source: proposal}, {source: k}, k)


def similar(items: ItemModel, item_id: str, k: int, allowed: np.ndarray | None = None) -> Candidates:
    """Nearest items in the ALS space, then those most often viewed by the same shoppers; ``allowed``: a
    per-row mask of the items that may be proposed (serving: those in stock)."""
    row = items.catalog.row_of[item_id]
    itself = frozenset({row})
    ann = ann_source(items.index, items.item_factors[row], k + 1, allowed)
    viewed = _neighbours(items.signals.also_viewed.of(row), allowed)
    quotas = {ANN: math.ceil(k / 2), ALSO_VIEWED: k // 2}
    return merge({ANN: ann, ALSO_VIEWED: viewed}, quotas, k, exclude=itself)


def bought_together(items: ItemModel, item_id: str, k: int, allowed: np.ndarray | None = None) -> Candidates:
    """Items bought in the same baskets, topped up with the same shoppers' items when baskets are few;
    ``allowed`` as for ``similar``."""
    row = items.catalog.row_of[item_id]
    found = {
        source: _neighbours(neighbours.of(row), allowed)
        for source, neighbours in (
            (BOUGHT_TOGETHER, items.signals.bought_together),
            (ALSO_VIEWED, items.signals.also_viewed),
        )
    }
    return merge(found, {BOUGHT_TOGETHER: k}, k, exclude=frozenset({row}))


def _neighbours(found: tuple[np.ndarray, np.ndarray], allowed: np.ndarray | None) -> Proposal:
    rows, similarity = found[0].astype(np.int64), found[1].astype(np.float64)
    if allowed is not None:
        keep = allowed[rows]
        rows, similarity = rows[keep], similarity[keep]
    return Proposal(rows, similarity)
