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
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from merchandiser import experiments
from merchandiser.candidate_sources import Candidates
from merchandiser.errors import UnknownItemError
from merchandiser.model import Model, UserState
from merchandiser.reranking import RuleOptions, Rules, Scored, category_cap, rerank
from merchandiser.serving_report import (
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
from merchandiser.settings import RetailerRules
from merchandiser.store import FeatureStore, ShopperRecord

logger = logging.getLogger(__name__)

CANDIDATES = 1000
SURFACES = ("home", "category")
REASONS = {
    "ann": "matches your taste",
    "popularity": "popular with shoppers",
    "request": "from your list",
}


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

    def user_state(self, shopper: ShopperRecord) -> UserState:
        session = [(event.item_id, event.weight) for event in shopper.session]
        state = self.model.user_state(shopper.history, session, shopper.purchased)
        # without a usable index the item factors may be stand-ins: no user vector then
        return replace(state, vector=None) if self.without_index else state

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
                candidates = self.model.candidates(state, k=k, category=category)
            except Exception as error:  # a broken index must not fail the page
                logger.exception("candidate retrieval failed, serving popularity")
                report.fallback(INDEX, f"{type(error).__name__}: {error}")
        if candidates is None:
            candidates = self.model.popular(k=k, category=category)
        report.count_candidates(candidates.sources)
        return candidates

    def rank_candidates(self, state: UserState, candidates: Candidates, report: ServingReport) -> np.ndarray:
        """The ranker's scores; on failure, the retrieval order (first candidate scores highest)."""
        try:
            return self.model.score(state, candidates, now=self.clock())
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
    ) -> dict:
        report = self.start(report, frozenset({INDEX, RANKER}))
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        with report.stage(RETRIEVAL):
            state = self.user_state(shopper)
            candidates = self.retrieve(state, CANDIDATES, report, category=category)
        with report.stage(RANKING):
            scores = self.rank_candidates(state, candidates, report)
        # Items from the current session belong on a "recently viewed" rail, not in "for you".
        seen = frozenset(event.item_id for event in shopper.session)
        retailer = self.merchandising
        rules = self._rules(
            k,
            retailer,
            exclude=shopper.purchased | seen,
            category=category,
            # a retailer's list may outlive an item: unknown promoted ids are skipped, not an error
            promoted=self._known_rows(retailer.promoted_item_ids),
            explore=self._new_items(retailer.new_item_days),
            explore_slots=math.floor(k * retailer.explore_share + 1e-9),
            seed=self._daily_seed(user_id),
        )
        with report.stage(RERANKING):
            page = rerank(self._scored(candidates.rows, scores, candidates.sources), rules)
        return self._response(
            user_id, page, degraded, surface=surface, personalized=state.vector is not None, report=report
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
        """Personalized order of a list the caller already has (search results, a category page)."""
        report = self.start(report, frozenset({RANKER}))
        rows = self._rows(list(dict.fromkeys(item_ids)))  # first occurrence of a repeated id wins
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        with report.stage(RANKING):
            state = self.user_state(shopper)
            candidates = self.model.candidates_for(state, rows)
            scores = self.rank_candidates(state, candidates, report)
        with report.stage(RERANKING):
            page = rerank(self._scored(rows, scores, ["request"] * len(rows)), Rules(k=k or len(rows)))
        return self._response(user_id, page, degraded, surface="rank", report=report)

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
        rules = self._rules(
            k,
            options,
            exclude=shopper.purchased,
            promoted=promoted,
            explore=pool,
            explore_slots=explore_slots,
            seed=seed if seed is not None else self._daily_seed(user_id),
        )
        page = rerank(self._scored(rows, scores, ["request"] * len(rows)), rules)
        return self._response(user_id, page, degraded, surface="rerank")

    def _rules(
        self,
        k: int,
        options: RuleOptions,
        exclude: frozenset[str],
        promoted: np.ndarray,
        explore: np.ndarray,
        explore_slots: int,
        seed: str,
        category: str | None = None,
    ) -> Rules:
        """The re-ranking rules of one page; MMR, when asked for, replaces the category cap."""
        diverse = options.mmr_lambda is not None
        return Rules(
            k=k,
            exclude=exclude | frozenset(options.exclude_item_ids),
            exclude_categories=frozenset(options.exclude_categories),
            category=category,
            max_per_category=None if category or diverse else category_cap(k),
            mmr_lambda=options.mmr_lambda,
            vectors=self._item_vectors if diverse else None,
            # placed by a rule, not scored: 0 unless the item is also among the scored ones
            promoted=tuple(self._scored(promoted, np.zeros(len(promoted)), ["rule"] * len(promoted))),
            promoted_share=options.promoted_share,
            explore=tuple(self._scored(explore, np.zeros(len(explore)), ["rule"] * len(explore))),
            explore_slots=explore_slots,
            seed=seed,
        )

    def _item_vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.item_factors[self._rows(item_ids)], dtype=np.float64)

    def _known_rows(self, item_ids: Sequence[str]) -> np.ndarray:
        return self._rows([item_id for item_id in item_ids if item_id in self.model.catalog.row_of])

    def _new_items(self, max_age_days: float) -> np.ndarray:
        """Rows without interaction signal (zero popularity) created within ``max_age_days``."""
        created = np.asarray(self.model.catalog.created_at, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # an unknown creation time (NaN) is not new
            young = created >= self.clock() - max_age_days * 86_400.0
        return np.flatnonzero(young & (np.asarray(self.model.popularity) == 0)).astype(np.int64)

    def _daily_seed(self, user_id: str) -> str:
        """The exploration seed: the same shopper sees the same new items all day, other ones tomorrow."""
        return f"{user_id}:{datetime.fromtimestamp(self.clock(), UTC).date().isoformat()}"

    def similar(self, item_id: str, k: int, report: ServingReport | None = None) -> dict:
        report = self.start(report, frozenset({INDEX}))
        self._rows([item_id])
        candidates = None
        with report.stage(RETRIEVAL):
            if not self.without_index:
                try:
                    candidates = self.model.similar(item_id, k=k)
                except Exception as error:  # a broken index must not fail the page
                    logger.exception("similar items failed, serving popularity")
                    report.fallback(INDEX, f"{type(error).__name__}: {error}")
            if candidates is None:
                # popular items, the item itself left out
                popular = self.model.popular(k=k + 1)
                keep = popular.rows != self.model.catalog.row_of[item_id]
                candidates = Candidates(
                    rows=popular.rows[keep][:k],
                    scores={name: values[keep][:k] for name, values in popular.scores.items()},
                    sources=[s for s, kept in zip(popular.sources, keep.tolist(), strict=True) if kept][:k],
                )
            report.count_candidates(candidates.sources)
        scores = np.nan_to_num(np.nanmax(np.vstack(list(candidates.scores.values())), axis=0), nan=0.0)
        page = self._scored(candidates.rows, scores, candidates.sources)
        return self._response(None, page, False, surface="similar", report=report)

    def popular(self, k: int, category: str | None = None, report: ServingReport | None = None) -> dict:
        report = self.start(report, frozenset())
        with report.stage(RETRIEVAL):
            candidates = self.model.popular(k=k, category=category)
            report.count_candidates(candidates.sources)
        page = self._scored(candidates.rows, candidates.scores["popularity"], candidates.sources)
        return self._response(None, page, False, surface="popular", report=report)

    def _rows(self, item_ids: Sequence[str]) -> np.ndarray:
        row_of = self.model.catalog.row_of
        unknown = [item_id for item_id in item_ids if item_id not in row_of]
        if unknown:
            raise UnknownItemError(f"unknown item ids: {', '.join(unknown[:10])}")
        return np.array([row_of[item_id] for item_id in item_ids], dtype=np.int64)

    def _scored(self, rows: np.ndarray, scores: np.ndarray, sources: Sequence[str]) -> list[Scored]:
        catalog = self.model.catalog
        rows = np.asarray(rows, dtype=np.int64)
        # one gather per column, then plain Python values: indexing numpy scalars row by row cost
        # ~7 ms per 1,000 candidates (bench_serving profile)
        columns = zip(
            catalog.item_ids[rows].tolist(),
            np.asarray(scores, dtype=np.float64).tolist(),
            sources,
            catalog.categories[rows].tolist(),
            catalog.in_stock[rows].tolist(),
            strict=True,
        )
        return [
            Scored(item_id=item_id, score=score, source=source, category=category, in_stock=in_stock)
            for item_id, score, source, category, in_stock in columns
        ]

    def _response(
        self,
        user_id: str | None,
        page: list[Scored],
        degraded: bool,
        surface: str,
        personalized: bool = False,
        report: ServingReport | None = None,
    ) -> dict[str, Any]:
        catalog = self.model.catalog
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
                    "reason": REASONS.get(item.source, item.source),
                    "source": item.source,
                    "title": str(catalog.titles[catalog.row_of[item.item_id]]),
                    "category": item.category,
                }
                for item in page
            ],
        }
