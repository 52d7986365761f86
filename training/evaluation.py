"""Offline evaluation on the held-out future: baselines, each candidate source, their union and the serving
pipeline, scored the same way, overall and per segment.

Every model sees each user's history before the test window only; the relevant items are what the
user interacted with in the test window, minus what they had already purchased (serving never
recommends those, so neither does any model here).

Models:
- ``popularity``: recency-decayed best sellers (the baseline every recommender must beat);
- ``als``: brute-force inner product of the folded-in user vector with every item vector;
- one per candidate source (``ann``, ``also_viewed``, ...): that source's own order, alone (the
  popularity source, which follows the shopper's segment, is ``segment_popularity``; the trending
  source is ``trending_source``);
- ``union``: every source's proposals fused by reciprocal rank (no learning);
- ``ranker``: the candidates in the LightGBM ranker's order, no business rules;
- ``pipeline``: what serving shows: the page of ``merchandiser.reranking`` (category cap, new arrivals,
  discovery; the model's tuned page rules and shares, its simple-list fallback when engaged and its
  long-tail correction) for the first ``PAGE`` places, then the same order;
- the tuned anchors of ``training.anchors`` (``pop_recent``, ``trending``, ``item_knn``, ``rp3beta``,
  ``ease``, ``ease_pop``), through ``evaluate_anchors`` on the same users and relevant items.

Segments: ``warm_users`` (a history before the cut), ``new_users`` (none), ``new_items`` (relevant
items restricted to those without interactions before the cut, over the users who have one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from merchandiser.catalog import ItemModel, top_popular
from merchandiser.ranking import score
from merchandiser.reranking import (
    daily_seed,
    page_rules,
    page_scores,
    ranked_items,
    ranked_order,
    rerank,
    tuned_rules,
)
from merchandiser.retrieval import (
    POPULARITY,
    SOURCE_NAMES,
    TRENDING,
    Candidates,
    Proposal,
    merge_proposals,
    model_shares,
    proposals,
    top_scores,
)
from merchandiser.serving import Model
from merchandiser.settings import RetailerRules
from merchandiser.shopper import UserState, state_from_rows
from training.anchors import ANCHOR_NAMES, AnchorResult
from training.fit import Hyperparameters, UserHistory, relevant_items, sample_users
from training.metrics import long_tail_items, ndcg_at_k, paired_ratio, summarize, unit_rows

logger = logging.getLogger(__name__)

LIST_LENGTH = 100  # recall@100 needs 100 items
PAGE = 20  # the served page: what coverage@20 and recall@20 measure
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
PROGRESS_EVERY = 1000


def source_model(source: str) -> str:
    """The evaluation's name for a source alone: the popularity and trending sources must not shadow the
    popularity baseline and the tuned trending anchor."""
    return {POPULARITY: "segment_popularity", TRENDING: "trending_source"}.get(source, source)


def fuse(proposals: Mapping[str, Proposal], exclude: frozenset[int], k: int, tie: np.ndarray) -> list[int]:
    """Reciprocal rank fusion of the sources' own orders: the unlearned union. Each row's terms are added
    in the sources' order (``np.bincount`` sums its input in order), ties settled by ``tie``."""
    found = [proposal.rows for proposal in proposals.values()]
    if not found:
        return []
    rows = np.concatenate(found).astype(np.int64)
    terms = np.concatenate([1.0 / (RRF_K + np.arange(len(part)) + 1.0) for part in found])
    if exclude:
        keep = ~np.isin(rows, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
        rows, terms = rows[keep], terms[keep]
    unique, position = np.unique(rows, return_inverse=True)
    fused = np.bincount(position, weights=terms, minlength=len(unique))
    return unique[np.lexsort((tie[unique], -fused))[:k]].tolist()


def recommend_als(model: Model, state: UserState) -> list[int]:
    tie = model.items.tie_rank
    if state.vector is None:
        rows, _ = top_popular(
            model.items.segment_popularity(state.segments), LIST_LENGTH, exclude=state.purchased, tie=tie
        )
        return rows.tolist()
    scores = model.items.item_factors @ state.vector
    found = top_scores(scores, LIST_LENGTH, exclude=state.purchased, positive_only=False, tie=tie)
    return found.rows.tolist()


def page_list(
    items: ItemModel,
    candidates: Candidates,
    served_scores: np.ndarray,
    purchased_rows: frozenset[int],
    user_id: str,
    now: float,
    retailer: RetailerRules,
) -> list[int]:
    """The served page (``PAGE`` places, the very rules and page builder serving uses) over the
    candidates ordered by ``served_scores`` (``page_scores``: the ranker's, with the model's fallback and
    long-tail correction), then the rest of that order, ``LIST_LENGTH`` rows in all."""
    ranked = candidates.rows[ranked_order(items, candidates, served_scores, LIST_LENGTH + PAGE)].tolist()
    purchased = frozenset(str(items.catalog.item_ids[row]) for row in purchased_rows)
    rules = page_rules(
        items, retailer, PAGE, candidates, served_scores, purchased, daily_seed(user_id, now), now
    )
    page = rerank(ranked_items(items, candidates, served_scores, PAGE), rules)
    shown = [items.catalog.row_of[item.item_id] for item in page]
    placed = set(shown)
    return (shown + [row for row in ranked if row not in placed])[:LIST_LENGTH]


def user_lists(
    model: Model, state: UserState, now: float, k: int, user_id: str, retailer: RetailerRules
) -> dict[str, list[int]]:
    """Every model's list for one user; the sources' proposals are computed once and shared."""
    items = model.items
    found = proposals(items, state, k)
    popular, _ = top_popular(items.popularity, LIST_LENGTH, exclude=state.purchased, tie=items.tie_rank)
    lists = {"popularity": popular.tolist(), "als": recommend_als(model, state)}
    for source in SOURCE_NAMES:
        proposal = found.get(source)
        # the first LIST_LENGTH not purchased are among the first LIST_LENGTH + purchases
        rows = [] if proposal is None else proposal.rows[: LIST_LENGTH + len(state.purchased)].tolist()
        lists[source_model(source)] = [row for row in rows if row not in state.purchased][:LIST_LENGTH]
    lists["union"] = fuse(found, state.purchased, LIST_LENGTH, items.tie_rank)
    lists["ranker"], lists["pipeline"] = served_lists(model, state, now, k, user_id, retailer, found)
    return lists


def served_lists(
    model: Model,
    state: UserState,
    now: float,
    k: int,
    user_id: str,
    retailer: RetailerRules,
    found: Mapping[str, Proposal] | None = None,
) -> tuple[list[int], list[int]]:
    """The ranker's order of the merged candidates, and the served page (``pipeline``), both as serving
    builds them from this model: its own source shares (``model_shares``), its fallback's blend of the
    ranker's scores and its long-tail correction (``page_scores``) and its tuned page rules under
    ``retailer``'s (``tuned_rules``), for the first ``PAGE`` places, then the page's order. ``found``: the
    sources' proposals, if known."""
    items = model.items
    found = proposals(items, state, k) if found is None else found
    candidates = merge_proposals(found, k, state.purchased, model_shares(items))
    scores = score(model.ranker, items, state, candidates, now)
    ranked = candidates.rows[ranked_order(items, candidates, scores, LIST_LENGTH)].tolist()
    served_scores = page_scores(items, candidates, scores, state)
    rules = tuned_rules(items, retailer)
    return ranked, page_list(items, candidates, served_scores, state.purchased, user_id, now, rules)


def evaluate(
    pipeline: Model,
    histories: dict[str, UserHistory],
    test_events: pd.DataFrame,
    now: float,
    hp: Hyperparameters,
    segments: Mapping[str, tuple[str, ...]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    retailer: RetailerRules | None = None,
    lists_out: dict[str, dict[str, list[int]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of every model over the users active in ``test_events`` (a deterministic sample if many);
    ``segments``: user attributes' segment keys, which new users are served by; ``retailer``: the page's
    rules (those serving applies when the retailer configured none: the model's tuned ones); ``lists_out``
    receives each model's list per user."""
    started = time.perf_counter()
    retailer = tuned_rules(pipeline.items, retailer or RetailerRules())
    segments = segments or {}
    users, relevant = evaluation_targets(test_events, pipeline, histories, hp)
    lists: dict[str, dict[str, list[int]]] = {}
    for done, user in enumerate(users, start=1):
        history = histories.get(user)
        if history is None:
            state = state_from_rows(pipeline.items, {}, [], frozenset(), None, segments.get(user, ()))
        else:
            state = history.state(pipeline.items)
        lists[user] = user_lists(pipeline, state, now, hp.candidates, user, retailer)
        if done % PROGRESS_EVERY == 0 or done == len(users):
            logger.info("evaluation: %d/%d users", done, len(users))
            if progress is not None:
                progress(done, len(users))
    names = ("popularity", "als", *map(source_model, SOURCE_NAMES), "union", "ranker", "pipeline")
    by_model = {name: {user: lists[user][name] for user in users} for name in names}
    if lists_out is not None:
        lists_out.update(by_model)
    results = score_models(by_model, relevant, pipeline, histories)
    logger.info("evaluation of %d users took %.1fs", len(users), time.perf_counter() - started)
    return results


def evaluation_targets(
    test_events: pd.DataFrame, pipeline: Model, histories: Mapping[str, UserHistory], hp: Hyperparameters
) -> tuple[list[str], dict[str, set[int]]]:
    """The evaluated users (a deterministic sample if many) and their relevant item rows."""
    relevant = relevant_items(test_events, pipeline.items.catalog, dict(histories))
    users = sample_users(list(relevant), hp.max_eval_users, hp.seed)
    return users, {user: relevant[user] for user in users}


def score_models(
    lists: Mapping[str, Mapping[str, Sequence[int]]],
    relevant: Mapping[str, set[int]],
    pipeline: Model,
    histories: Mapping[str, UserHistory],
) -> dict[str, dict[str, Any]]:
    """Every model's metrics from its list per user, overall and per segment (``lists``: model -> user ->
    item rows, over the users of ``relevant``)."""
    users = list(relevant)
    vectors = unit_rows(pipeline.items.item_factors)
    n_items = len(pipeline.items.catalog)
    trained = np.zeros(n_items, dtype=bool)
    for history in histories.values():
        trained[list(history.weights)] = True
    untrained = ~trained  # an item nobody touched before the cut is new to the model
    new_items = {user: {row for row in items if untrained[row]} for user, items in relevant.items()}
    groups: dict[str, dict[str, set[int]]] = {
        "warm_users": {user: relevant[user] for user in users if user in histories},
        "new_users": {user: relevant[user] for user in users if user not in histories},
        "new_items": {user: items for user, items in new_items.items() if items},
    }
    # the tail by the popularity the served model knows at the cut (what the shop's shoppers had seen)
    tail = long_tail_items(pipeline.items.popularity)
    results: dict[str, dict[str, Any]] = {}
    for name, recommendations in lists.items():
        metrics = summarize(recommendations, relevant, n_items, vectors, tail)
        metrics["segments"] = {
            group: summarize(_subset(recommendations, members), members, n_items, vectors, tail)
            for group, members in groups.items()
        }
        results[name] = metrics
        logger.info(
            "evaluation %s: ndcg@10 %.4f recall@20 %.4f coverage@20 %.4f long_tail@20 %.4f",
            name,
            metrics["ndcg@10"],
            metrics["recall@20"],
            metrics["coverage@20"],
            metrics["long_tail@20"],
        )
    return results


def evaluate_anchors(
    anchors: Mapping[str, AnchorResult],
    pipeline: Model,
    histories: Mapping[str, UserHistory],
    test_events: pd.DataFrame,
    hp: Hyperparameters,
    lists_out: dict[str, dict[str, list[int]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The tuned anchors (refitted on the training window) scored like ``evaluate``'s models: the same
    users, relevant items, metrics and segments; a skipped anchor has no entry. ``lists_out`` receives
    each anchor's list per user."""
    users, relevant = evaluation_targets(test_events, pipeline, histories, hp)
    lists = {
        name: result.recommender.recommend(users, LIST_LENGTH)
        for name, result in anchors.items()
        if result.recommender is not None
    }
    if lists_out is not None:
        lists_out.update(lists)
    return score_models(lists, relevant, pipeline, histories)


def against_anchors(
    lists: Mapping[str, Mapping[str, Sequence[int]]], relevant: Mapping[str, set[int]], seed: int
) -> dict[str, dict[str, Any]]:
    """The served page's NDCG@10 over each tuned anchor's in ``lists`` (model -> user -> rows, the same
    users), with a paired bootstrap 95% interval (``training.metrics.paired_ratio``): a ratio whose
    interval holds 1 is a tie on this test window, not a win or a loss."""
    users = [user for user in relevant if relevant[user]]

    def ndcg(name: str) -> np.ndarray:
        return np.array([ndcg_at_k(lists[name][user], relevant[user], 10) for user in users])

    ours = ndcg("pipeline")
    return {
        name: {"metric": "ndcg@10", **paired_ratio(ours, ndcg(name), seed=seed)}
        for name in ANCHOR_NAMES
        if name in lists
    }


def _subset(recommendations: Mapping[str, Sequence[int]], members: Mapping[str, set[int]]) -> dict:
    return {user: recommendations[user] for user in members}
