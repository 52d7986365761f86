"""The request path: retrieval, then ranking, then re-ranking, composed in one process.

Each stage is reachable on its own (candidates, rank a given list, re-rank a given list) and the
surfaces compose them. Every response carries a recommendation id, the model version and the
shopper's experiment variant.

Degrade, never fail: a feature store error serves the shopper as unknown, a failing ranker keeps the
retrieval order, a missing or failing index serves popularity candidates (``faults`` are what the
model loader already found broken, see ``runtime.load_model``). Each fallback is recorded in the
request's ``ServingReport`` (logged there, counted by the handler) and the response says
``degraded: true`` with the kinds in ``degraded_reasons``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from merchandiser import experiments, ranking, retrieval
from merchandiser.catalog import ItemModel
from merchandiser.errors import UnknownItemError
from merchandiser.reranking import (
    Rules,
    Scored,
    daily_seed,
    page_rules,
    ranked_items,
    reason,
    reasons_from_recent,
    rerank,
    rules,
    scored,
)
from merchandiser.retrieval import TRENDING, Candidates
from merchandiser.serving.model import Model
from merchandiser.serving.report import (
    FEATURE_STORE,
    INDEX,
    MODEL,
    RANKER,
    RANKING,
    RERANKING,
    RETRIEVAL,
    STORE,
    ServingReport,
)
from merchandiser.settings import RetailerRules, RuleOptions
from merchandiser.shopper import UserState, from_record
from merchandiser.store import FeatureStore, ShopperRecord, rank_trending

logger = logging.getLogger(__name__)

CANDIDATES = retrieval.CANDIDATES
SURFACES = ("home", "category")


SIMILAR_POOL_PER_SLOT = 5  # similar items re-ordered by a shopper's taste come from 5 per slot
MIN_SIMILAR_POOL = 50


@dataclass
class Recommender:
    model: Model
    store: FeatureStore
    clock: Callable[[], float] = time.time
    # Fallbacks the model loader already decided on (runtime.load_model): they apply to every request.
    faults: frozenset[str] = field(default_factory=frozenset)
    # The retailer's rules for the recommendations route (ServingSettings.merchandising).
    merchandising: RetailerRules = field(default_factory=RetailerRules)

    def shopper(self, user_id: str, report: ServingReport | None = None) -> tuple[ShopperRecord, bool]:
        """The shopper's profile and session; a store failure serves the shopper as unknown."""
        try:
            return self.store.shopper(user_id), False
        except Exception as error:  # any DynamoDB error or timeout: degrade, never fail the page
            logger.exception("feature store unavailable, serving without user features")
            if report is not None:
                report.fallback(FEATURE_STORE, f"{type(error).__name__}: {error}")
            return ShopperRecord(user_id=user_id), True

    def user_state(self, shopper: ShopperRecord, context: Mapping[str, str] | None = None) -> UserState:
        state = from_record(self.items, shopper, context)
        # without a usable index the item factors may be stand-ins: no user vector then
        return replace(state, vector=None) if self.without_index else state

    @property
    def items(self) -> ItemModel:
        return self.model.items

    @property
    def without_index(self) -> bool:
        return bool(self.faults & {INDEX, MODEL})

    def start(self, report: ServingReport | None, uses: frozenset[str]) -> ServingReport:
        """The request's report, with the load-time faults of the parts this request ``uses``."""
        report = report if report is not None else ServingReport()
        for fault in sorted(self.faults & (uses | {MODEL})):
            report.fallback(fault, "found at model load")
        return report

    def retrieve(
        self, state: UserState, k: int, report: ServingReport, category: str | None = None
    ) -> Candidates:
        """ANN + popularity candidates; popularity alone when the index is unusable."""
        candidates = None
        if not self.without_index:
            try:
                candidates = retrieval.candidates(self.items, state, k, category)
            except Exception as error:  # a broken index must not fail the page
                logger.exception("candidate retrieval failed, serving popularity")
                report.fallback(INDEX, f"{type(error).__name__}: {error}")
        if candidates is None:
            candidates = retrieval.popular(self.items, k, category)
        report.count_candidates(candidates.sources)
        return candidates

    def rank_candidates(self, state: UserState, candidates: Candidates, report: ServingReport) -> np.ndarray:
        """The ranker's scores; on failure, the retrieval order (first candidate scores highest)."""
        try:
            return ranking.score(self.model.ranker, self.items, state, candidates, self.clock())
        except Exception as error:  # e.g. a ranker that loads but cannot predict these features
            logger.exception("ranking failed, keeping the retrieval order")
            report.fallback(RANKER, f"{type(error).__name__}: {error}")
            return -np.arange(len(candidates), dtype=np.float64)

    def recommend(
        self,
        user_id: str,
        k: int,
        surface: str = "home",
        category: str | None = None,
        report: ServingReport | None = None,
        context: Mapping[str, str] | None = None,
    ) -> dict:
        report = self.start(report, frozenset({INDEX, RANKER}))
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        with report.stage(RETRIEVAL):
            state = self.user_state(shopper, context)
            candidates = self.retrieve(state, CANDIDATES, report, category=category)
        with report.stage(RANKING):
            scores = self.rank_candidates(state, candidates, report)
        # Items from the current session belong on a "recently viewed" rail, not in "for you".
        seen = frozenset(event.item_id for event in shopper.session)
        now = self.clock()
        with report.stage(RERANKING):
            the_rules = page_rules(
                self.items,
                self.merchandising,
                k,
                candidates,
                scores,
                exclude=shopper.purchased | seen,
                seed=daily_seed(user_id, now),
                now=now,
                category=category,
            )
            page = rerank(ranked_items(self.items, candidates, scores, k), the_rules)
        return self._response(
            user_id,
            page,
            degraded,
            surface=surface,
            personalized=state.vector is not None,
            report=report,
            state=state,
        )

    def candidates(self, user_id: str, k: int, report: ServingReport | None = None) -> dict:
        report = self.start(report, frozenset({INDEX}))
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        with report.stage(RETRIEVAL):
            candidates = self.retrieve(self.user_state(shopper), k, report)
        scores = np.nan_to_num(np.nanmax(np.vstack(list(candidates.scores.values())), axis=0), nan=0.0)
        page = self._scored(candidates.rows, scores, candidates.sources)[:k]
        return self._response(user_id, page, degraded, surface="candidates", report=report)

    def rank(
        self, user_id: str, item_ids: Sequence[str], k: int | None = None, report: ServingReport | None = None
    ) -> dict:
        """Personalized order of a list the caller already has (search results, a category page).

        Ids the catalogue does not know (yet) stay on the list, after the ranked ones, with reason
        "unknown item": one stale id in a search result must not cost the shopper the whole page.
        """
        report = self.start(report, frozenset({RANKER}))
        requested = list(dict.fromkeys(item_ids))  # first occurrence of a repeated id wins
        row_of = self.items.catalog.row_of
        rows = self._rows([item_id for item_id in requested if item_id in row_of])
        limit = k or len(requested)
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        page: list[Scored] = []
        if len(rows):
            with report.stage(RANKING):
                state = self.user_state(shopper)
                candidates = retrieval.candidates_for(self.items, state, rows)
                scores = self.rank_candidates(state, candidates, report)
            with report.stage(RERANKING):
                page = rerank(self._scored(rows, scores, ["request"] * len(rows)), Rules(k=limit))
        response = self._response(user_id, page, degraded, surface="rank", report=report)
        unknown = [item_id for item_id in requested if item_id not in row_of]
        response["items"] += [
            {"item_id": item_id, "score": 0.0, "reason": "unknown item", "source": "unknown", "title": "",
             "category": ""}
            for item_id in unknown[: max(0, limit - len(response["items"]))]
        ]  # fmt: skip
        return response

    def apply_rules(
        self,
        user_id: str,
        items: Sequence[tuple[str, float]],
        k: int,
        options: RuleOptions | None = None,
        explore: Sequence[str] = (),
        explore_slots: int = 0,
        seed: str | None = None,
    ) -> dict:
        """Business rules alone on a scored list: purchases and out-of-stock items filtered, the caller's
        exclusions, promotions and exploration, then MMR or else the category cap.

        An unknown id among the items, the promoted or the explored ids is the caller's error (404).
        """
        options = options if options is not None else RuleOptions()
        rows = self._rows([item_id for item_id, _ in items])
        promoted, pool = self._rows(options.promoted_item_ids), self._rows(explore)
        shopper, degraded = self.shopper(user_id)
        scores = np.array([score for _, score in items], dtype=np.float64)
        the_rules = rules(
            self.items,
            options,
            k,
            exclude=shopper.purchased,
            seed=seed if seed is not None else daily_seed(user_id, self.clock()),
            promoted=promoted,
            explore=pool,
            explore_slots=explore_slots,
        )
        page = rerank(self._scored(rows, scores, ["request"] * len(rows)), the_rules)
        return self._response(user_id, page, degraded, surface="rerank")

    def similar(
        self, item_id: str, k: int, report: ServingReport | None = None, user_id: str | None = None
    ) -> dict:
        """Similar items; with ``user_id``, a wider pool of them re-ordered half by similarity, half by
        the shopper's taste, the shopper's purchases left out."""
        report = self.start(report, frozenset({INDEX}))
        self._rows([item_id])
        pool = k if user_id is None else max(SIMILAR_POOL_PER_SLOT * k, MIN_SIMILAR_POOL)
        candidates = None
        with report.stage(RETRIEVAL):
            if not self.without_index:
                try:
                    candidates = retrieval.similar(self.items, item_id, pool)
                except Exception as error:  # a broken index must not fail the page
                    logger.exception("similar items failed, serving popularity")
                    report.fallback(INDEX, f"{type(error).__name__}: {error}")
            if candidates is None:
                # popular items, the item itself left out
                popular = retrieval.popular(self.items, pool + 1)
                keep = popular.rows != self.items.catalog.row_of[item_id]
                candidates = Candidates(
                    rows=popular.rows[keep][:pool],
                    scores={name: values[keep][:pool] for name, values in popular.scores.items()},
                    sources=[s for s, kept in zip(popular.sources, keep.tolist(), strict=True) if kept][
                        :pool
                    ],
                )
            report.count_candidates(candidates.sources)
        scores = np.nan_to_num(np.nanmax(np.vstack(list(candidates.scores.values())), axis=0), nan=0.0)
        degraded, personalized = False, False
        rows, sources = candidates.rows, candidates.sources
        if user_id is not None:
            with report.stage(STORE):
                shopper, degraded = self.shopper(user_id, report)
            state = self.user_state(shopper)
            keep = ~np.isin(rows, np.fromiter(state.purchased, dtype=np.int64, count=len(state.purchased)))
            rows, scores = rows[keep], scores[keep]
            sources = [source for source, kept in zip(sources, keep.tolist(), strict=True) if kept]
            if state.vector is not None and len(rows):
                personalized = True
                closeness = 1.0 - np.arange(len(rows)) / len(rows)  # the similar items' own order
                taste = self.items.item_factors[rows] @ state.vector
                spread = float(taste.max() - taste.min())
                taste = (taste - taste.min()) / spread if spread > 0 else np.ones(len(rows))
                scores = 0.5 * closeness + 0.5 * taste
                order = np.argsort(-scores, kind="stable")
                rows, scores, sources = rows[order], scores[order], [sources[i] for i in order]
        page = self._scored(rows[:k], scores[:k], sources[:k])
        return self._response(
            user_id, page, degraded, surface="similar", personalized=personalized, report=report
        )

    def popular(
        self,
        k: int,
        category: str | None = None,
        report: ServingReport | None = None,
        window: int | None = None,
    ) -> dict:
        """Best sellers; with ``window`` (hours), what is trending now: the live hourly counters of the
        event processor, else (no counts yet, or the store failing) the model's trending signal."""
        report = self.start(report, frozenset())
        degraded = False
        with report.stage(RETRIEVAL):
            candidates = None
            if window is not None:
                candidates, degraded = self._live_trending(k, category, window, report)
            if candidates is None:
                candidates = retrieval.popular(self.items, k, category, trending=window is not None)
            report.count_candidates(candidates.sources)
        scores = next(iter(candidates.scores.values()))
        page = self._scored(candidates.rows, scores, candidates.sources)
        return self._response(None, page, degraded, surface="popular", report=report)

    def _live_trending(
        self, k: int, category: str | None, window: int, report: ServingReport
    ) -> tuple[Candidates | None, bool]:
        try:
            counts = self.store.trending(datetime.fromtimestamp(self.clock(), UTC), window, window / 4)
        except Exception as error:  # the counters are a nicety: degrade to the model's signal
            logger.exception("trending counters unavailable, serving the model's trending")
            report.fallback(FEATURE_STORE, f"{type(error).__name__}: {error}")
            return None, True
        catalog = self.items.catalog
        ranked = [
            (catalog.row_of[item_id], score)
            for item_id, score in rank_trending(counts, len(counts))
            if item_id in catalog.row_of
            and catalog.in_stock[catalog.row_of[item_id]]
            and (category is None or catalog.categories[catalog.row_of[item_id]] == category)
        ][:k]
        if not ranked:
            return None, False
        rows = np.array([row for row, _ in ranked], dtype=np.int64)
        scores = np.array([score for _, score in ranked], dtype=np.float64)
        return Candidates(rows=rows, scores={TRENDING: scores}, sources=[TRENDING] * len(rows)), False

    def bought_together(self, item_id: str, k: int, report: ServingReport | None = None) -> dict:
        """Frequently bought together: basket neighbours, then shopper-level ones when baskets are few."""
        report = self.start(report, frozenset())
        self._rows([item_id])
        with report.stage(RETRIEVAL):
            candidates = retrieval.bought_together(self.items, item_id, k)
            report.count_candidates(candidates.sources)
        scores = np.nan_to_num(np.nanmax(np.vstack(list(candidates.scores.values())), axis=0), nan=0.0)
        keep = np.flatnonzero(self.items.catalog.in_stock[candidates.rows])
        page = self._scored(candidates.rows[keep], scores[keep], [candidates.sources[i] for i in keep])
        return self._response(None, page, False, surface="bought-together", report=report)

    def _rows(self, item_ids: Sequence[str]) -> np.ndarray:
        row_of = self.items.catalog.row_of
        unknown = [item_id for item_id in item_ids if item_id not in row_of]
        if unknown:
            raise UnknownItemError(f"unknown item ids: {', '.join(unknown[:10])}")
        return np.array([row_of[item_id] for item_id in item_ids], dtype=np.int64)

    def _scored(self, rows: np.ndarray, scores: np.ndarray, sources: Sequence[str]) -> list[Scored]:
        return scored(self.items, rows, scores, sources)

    def _response(
        self,
        user_id: str | None,
        page: list[Scored],
        degraded: bool,
        surface: str,
        personalized: bool = False,
        report: ServingReport | None = None,
        state: UserState | None = None,
    ) -> dict[str, Any]:
        catalog = self.items.catalog
        because = reasons_from_recent(self.items, state, page) if state is not None else {}
        reasons = list(report.fallbacks) if report is not None else []
        if degraded and not reasons:
            reasons = [FEATURE_STORE]  # a caller without a report (apply_rules): only the store degrades
        return {
            "recommendation_id": str(uuid.uuid4()),
            "model_version": self.model.version,
            "variant": experiments.assign(user_id) if user_id else "production",
            "surface": surface,
            "user_id": user_id,
            "personalized": personalized,
            "degraded": degraded or bool(reasons),
            "degraded_reasons": reasons,
            "items": [
                {
                    "item_id": item.item_id,
                    "score": round(item.score, 6),
                    "reason": because.get(item.item_id) or reason(item.source),
                    "source": item.source,
                    "title": str(catalog.titles[catalog.row_of[item.item_id]]),
                    "category": item.category,
                }
                for item in page
            ],
        }
