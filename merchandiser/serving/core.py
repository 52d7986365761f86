"""The parts every surface shares: the shopper, retrieval, ranking, the experiment arms and the response.

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
from typing import Any

import numpy as np

from merchandiser import ranking, retrieval
from merchandiser.catalog import ItemModel
from merchandiser.errors import UnknownItemError
from merchandiser.reranking import Scored, reason, reasons_from_recent, scored
from merchandiser.retrieval import TRENDING, Candidates
from merchandiser.serving.model import Model
from merchandiser.serving.report import FEATURE_STORE, INDEX, MODEL, MODEL_VERSION, RANKER, ServingReport
from merchandiser.serving.treatment import PRODUCTION_TREATMENT, RANKER_ORDER, Arm, Treatment, interleave
from merchandiser.settings import RetailerRules
from merchandiser.shopper import UserState, from_record
from merchandiser.store import FeatureStore, ShopperRecord

logger = logging.getLogger(__name__)

CANDIDATES = retrieval.CANDIDATES


def best_scores(candidates: Candidates) -> np.ndarray:
    """Each candidate's best score among the sources that proposed it (0 where none scored it)."""
    if not len(candidates):
        return np.empty(0, dtype=np.float64)
    return np.nan_to_num(np.nanmax(np.vstack(list(candidates.scores.values())), axis=0), nan=0.0)


@dataclass
class RecommenderCore:
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
        self,
        state: UserState,
        k: int,
        report: ServingReport,
        category: str | None = None,
        shares: Mapping[str, float] | None = None,
    ) -> Candidates:
        """Every source's candidates (``shares``: a variant's quotas); popularity alone when the index is
        unusable."""
        candidates = None
        if not self.without_index:
            try:
                candidates = retrieval.candidates(
                    self.items, state, k, category, shares=shares, blocked=self.items.out_of_stock_mask
                )
            except Exception as error:  # a broken index must not fail the page
                logger.exception("candidate retrieval failed, serving popularity")
                report.fallback(INDEX, f"{type(error).__name__}: {error}")
        if candidates is None:
            candidates = retrieval.popular(self.items, k, category, exclude=self.items.out_of_stock)
        report.count_candidates(candidates.sources)
        return candidates

    def rank_candidates(
        self, state: UserState, candidates: Candidates, report: ServingReport, order: str = RANKER_ORDER
    ) -> np.ndarray:
        """The ranker's scores (or the ALS order's); on failure, the retrieval order (first candidate
        scores highest)."""
        ranker = self.model.ranker if order == RANKER_ORDER else None
        try:
            return ranking.score(ranker, self.items, state, candidates, self.clock())
        except Exception as error:  # e.g. a ranker that loads but cannot predict these features
            logger.exception("ranking failed, keeping the retrieval order")
            report.fallback(RANKER, f"{type(error).__name__}: {error}")
            return -np.arange(len(candidates), dtype=np.float64)

    def check_model_version(self, arm: Arm, report: ServingReport) -> None:
        """A pinned version other than the loaded one is served by the loaded one, and said so."""
        if arm.model_version is not None and arm.model_version != self.model.version:
            loaded = self.model.version
            report.fallback(MODEL_VERSION, f"pinned {arm.model_version}, serving the loaded {loaded}")

    def policy_list(self, policy: str, k: int, category: str | None = None) -> Candidates:
        """A holdout's simple list: best sellers or the model's trending, best first (scores that keep
        that order: ``best_scores`` of it is non-increasing)."""
        return retrieval.popular(
            self.items, k, category, trending=policy == TRENDING, exclude=self.items.out_of_stock
        )

    def arms_pages(
        self,
        treatment: Treatment,
        k: int,
        seed: str,
        report: ServingReport,
        page_of: Callable[[Arm], list[Scored]],
    ) -> list[Scored]:
        """The page of the treatment's one arm, or the team draft of its two arms' pages (the teams go
        on the report, for the impression)."""
        pages = []
        for arm in treatment.arms:
            self.check_model_version(arm, report)
            pages.append(page_of(arm))
        if len(pages) == 1:
            return pages[0]
        page, report.teams = interleave(pages, k, seed)
        return page

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
        treatment: Treatment = PRODUCTION_TREATMENT,
        recommendation_id: str | None = None,
    ) -> dict[str, Any]:
        catalog = self.items.catalog
        because = reasons_from_recent(self.items, state, page) if state is not None else {}
        reasons = list(report.fallbacks) if report is not None else []
        if degraded and not reasons:
            reasons = [FEATURE_STORE]  # a caller without a report (apply_rules): only the store degrades
        return {
            "recommendation_id": recommendation_id or str(uuid.uuid4()),
            "model_version": self.model.version,
            "experiment": treatment.experiment,
            "variant": treatment.variant,
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
