"""The recommendations page's business rules in one place: serving builds every page with them and the
training job's evaluation scores the very same page, so the offline figures are the served ones.

The page (``RetailerRules`` defaults): purchases and the current session's items left out, a category
cap, new arrivals in exploration slots spread over the page, and discovery slots at its end: the
shopper's own candidates, proposed by a personal source (not by popularity or trending), that the ranker
put beyond the page and that are not among the catalogue's best sellers. Discovery keeps a long tail of
the catalogue in front of shoppers, which both they and the next training learn from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from pydantic import ValidationError

from merchandiser.catalog import ItemModel
from merchandiser.reranking.exploration import THOMPSON, memo, new_item_rows, request_rng, thompson_head
from merchandiser.reranking.fallback import anchor_blend
from merchandiser.reranking.popularity import long_tail_correct
from merchandiser.reranking.rules import Rules, Scored, category_cap
from merchandiser.retrieval import PERSONAL_SOURCES, Candidates, best_positions
from merchandiser.settings import RetailerRules, RuleOptions
from merchandiser.shopper import UserState

DISCOVERY_DEPTH = 300  # discovery draws from the ranker's places k+1 .. this one
RERANK_DEPTH_PER_SLOT = 10
MIN_RERANK_DEPTH = 200


def scored(model: ItemModel, rows: np.ndarray, scores: np.ndarray, sources: Sequence[str]) -> list[Scored]:
    catalog = model.catalog
    rows = np.asarray(rows, dtype=np.int64)
    if len(sources) != len(rows) or len(scores) != len(rows):
        raise ValueError(f"{len(rows)} rows, {len(scores)} scores and {len(sources)} sources")
    # one gather per column, then the objects built by map in C: a few hundred rows on every page
    return list(
        map(
            Scored,
            catalog.item_ids[rows].tolist(),
            np.asarray(scores, dtype=np.float64).tolist(),
            sources,
            catalog.categories[rows].tolist(),
            np.asarray(catalog.in_stock[rows], dtype=bool).tolist(),
            model.tie_rank[rows].tolist(),
        )
    )


def page_scores(model: ItemModel, candidates: Candidates, scores: np.ndarray, user: UserState) -> np.ndarray:
    """What the pipeline's page orders its candidates by, from the ranker's ``scores``: blended with the
    model's fallback anchor when engaged (``anchor_blend``: a simple list, or a personal one scored from the
    ``user``'s history), then with the model's long-tail correction (``long_tail_correct``). Serving and
    the training job's evaluation both call this, and only this."""
    return long_tail_correct(model, candidates, anchor_blend(model, candidates, scores, user))


def ranked_order(
    model: ItemModel, candidates: Candidates, scores: np.ndarray, k: int | None = None
) -> np.ndarray:
    """Positions of the candidates best first by ``scores``, equal scores by the model's ``tie_rank``
    (recent popularity, then recency), never by the order the sources proposed them; the first ``k``."""
    k = len(scores) if k is None else k
    return best_positions(np.asarray(scores, dtype=np.float64), k, model.tie_rank[candidates.rows])


def ranked_items(model: ItemModel, candidates: Candidates, scores: np.ndarray, k: int) -> list[Scored]:
    """The candidates the page's rules choose from: the ranker's best ``RERANK_DEPTH_PER_SLOT * k`` (at
    least ``MIN_RERANK_DEPTH``), enough for filters and caps to fill the page, without building and
    sorting a thousand items on every request."""
    top = ranked_order(model, candidates, scores, max(RERANK_DEPTH_PER_SLOT * k, MIN_RERANK_DEPTH))
    return scored(model, candidates.rows[top], scores[top], [candidates.sources[i] for i in top.tolist()])


def discovery_pool(
    model: ItemModel, candidates: Candidates, scores: np.ndarray, k: int, popular_share: float
) -> list[Scored]:
    """Candidates a personal source proposed, ranked after the first ``k`` (up to ``DISCOVERY_DEPTH``),
    outside the ``popular_share`` most popular items of the catalogue; with their ranker scores."""
    order = ranked_order(model, candidates, scores, DISCOVERY_DEPTH)[k:]
    personal = np.zeros(len(candidates), dtype=bool)
    for source in PERSONAL_SOURCES:
        if source in candidates.scores:
            personal |= ~np.isnan(candidates.scores[source])
    picked = order[personal[order]]
    picked = picked[model.popularity_percentile[candidates.rows[picked]] < 1.0 - popular_share]
    return scored(model, candidates.rows[picked], scores[picked], [candidates.sources[i] for i in picked])


def daily_seed(user_id: str, now: float) -> str:
    """The same shopper sees the same exploration and discovery items all day, other ones tomorrow."""
    return f"{user_id}:{datetime.fromtimestamp(now, UTC).date().isoformat()}"


def slots(k: int, share: float) -> int:
    return math.floor(k * share + 1e-9)


def rules(
    model: ItemModel,
    options: RuleOptions,
    k: int,
    exclude: frozenset[str],
    seed: str,
    promoted: np.ndarray,
    explore: np.ndarray,
    explore_slots: int,
    discover: Sequence[Scored] = (),
    discover_slots: int = 0,
    category: str | None = None,
    explore_scores: np.ndarray | None = None,
) -> Rules:
    """The re-ranking rules of one page; MMR, when asked for, replaces the category cap. With
    ``explore_scores`` (one per ``explore`` row: Thompson draws) the exploration slots take the best
    scores, else the seed's pseudo-random order."""
    diverse = options.mmr_lambda is not None
    return Rules(
        k=k,
        exclude=exclude | frozenset(options.exclude_item_ids),
        exclude_categories=frozenset(options.exclude_categories),
        category=category,
        max_per_category=None if category or diverse else category_cap(k, options.category_share),
        mmr_lambda=options.mmr_lambda,
        vectors=(lambda ids: model.item_factors[model.rows(ids)]) if diverse else None,
        # placed by a rule, not scored: 0 unless the item is also among the scored ones
        promoted=tuple(scored(model, promoted, np.zeros(len(promoted)), ["rule"] * len(promoted))),
        promoted_share=options.promoted_share,
        explore=tuple(
            scored(
                model,
                explore,
                np.zeros(len(explore)) if explore_scores is None else explore_scores,
                ["rule"] * len(explore),
            )
        ),
        explore_slots=explore_slots,
        explore_by_score=explore_scores is not None,
        discover=tuple(discover),
        discover_slots=discover_slots,
        seed=seed,
    )


def tuned_rules(model: ItemModel, retailer: RetailerRules) -> RetailerRules:
    """The retailer's rules over the page rules the model's training chose (``page_rules`` in its
    manifest): what the retailer set wins, the tuned values replace only the defaults. A manifest value
    these rules refuse is ignored (the retailer's rules as they are), never a failed page."""
    tuned = {
        name: value
        for name, value in (model.manifest.get("page_rules") or {}).items()
        if name in RetailerRules.model_fields
    }
    if not tuned:
        return retailer
    try:
        return RetailerRules.model_validate({**tuned, **retailer.model_dump(exclude_unset=True)})
    except ValidationError:
        return retailer


def explorable(
    model: ItemModel, rows: np.ndarray, options: RuleOptions, exclude: frozenset[str], category: str | None
) -> np.ndarray:
    """The exploration pool's rows the page's filters let through (``rules.passes``, on arrays: in stock,
    in the page's category, not excluded by id or category), so that its head fills every slot it can.
    ``rows`` ascending (``new_item_rows``); the same array again when no filter of this page removes a row."""
    kept = memo(model, "_explorable_in_stock", (rows, model.out_of_stock_mask), lambda: in_stock(model, rows))
    if category is not None or options.exclude_categories:
        categories = model.catalog.categories[kept]
        keep = np.ones(len(kept), dtype=bool)
        if category is not None:
            keep &= categories == category
        if options.exclude_categories:
            keep &= ~np.isin(categories, list(options.exclude_categories))
        kept = kept[keep]
    excluded = np.unique(model.rows(list(exclude | frozenset(options.exclude_item_ids))))
    if len(excluded) and len(kept):
        at = np.minimum(np.searchsorted(kept, excluded), len(kept) - 1)
        drop = at[kept[at] == excluded]
        if len(drop):
            kept = np.delete(kept, drop)
    return kept


def in_stock(model: ItemModel, rows: np.ndarray) -> np.ndarray:
    """``rows`` (ascending) less the out-of-stock ones."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > 1 and not bool(np.all(rows[1:] > rows[:-1])):
        raise ValueError("the exploration pool's rows must be ascending")
    blocked = model.out_of_stock_mask
    kept = rows.copy() if blocked is None else rows[~blocked[rows]]
    kept.flags.writeable = False  # shared by the pages that follow
    return kept


def page_rules(
    model: ItemModel,
    retailer: RetailerRules,
    k: int,
    candidates: Candidates,
    scores: np.ndarray,
    exclude: frozenset[str],
    seed: str,
    now: float,
    category: str | None = None,
    explore_seed: str | None = None,
) -> Rules:
    """The rules of one recommendations page (home or category): the retailer's, with new arrivals to
    explore (by Thompson sampling from ``explore_seed``, default ``seed``, unless the retailer's
    ``explore_policy`` says uniform) and the shopper's discovery pool."""
    promoted = model.rows(retailer.promoted_item_ids)
    explore = explorable(
        model, new_item_rows(model, now, retailer.new_item_days), retailer, exclude, category
    )
    # only the pool's head can take a slot: as many items as the slots, and as the promoted items may take
    head = slots(k, retailer.explore_share) + len(promoted)
    draws = None
    if retailer.explore_policy == THOMPSON:
        explore_seed = explore_seed if explore_seed is not None else seed
        explore, draws = thompson_head(model, explore, explore_seed, head)
    elif len(explore) > head:  # uniform: a head taken at random from the seed (the rules then shuffle it)
        explore = explore[request_rng(seed).choice(len(explore), head, replace=False)]
    return rules(
        model,
        retailer,
        k,
        exclude,
        seed,
        promoted=promoted,
        explore=explore,
        explore_slots=slots(k, retailer.explore_share),
        discover=discovery_pool(model, candidates, scores, k, retailer.discovery_popular_share),
        discover_slots=slots(k, retailer.discovery_share),
        category=category,
        explore_scores=draws,
    )
