"""The item surfaces: similar items, frequently bought together, best sellers and trending.

Each takes the shopper's ``Treatment``: a holdout ``policy`` serves its simple list (best sellers or the
model's trending, the item itself left out), an interleaving variant drafts its two arms' lists into one
page. Without a ``user_id`` a page is production: the shopper is the unit of randomisation.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import numpy as np

from merchandiser import retrieval
from merchandiser.reranking import Scored
from merchandiser.retrieval import TRENDING, Candidates, best_positions
from merchandiser.serving.core import RecommenderCore, best_scores
from merchandiser.serving.report import FEATURE_STORE, INDEX, RETRIEVAL, STORE, ServingReport
from merchandiser.serving.treatment import PRODUCTION_TREATMENT, Arm, Treatment
from merchandiser.store import rank_trending

logger = logging.getLogger(__name__)

SIMILAR_POOL_PER_SLOT = 5  # similar items re-ordered by a shopper's taste come from 5 per slot
MIN_SIMILAR_POOL = 50


class ItemSurfaces(RecommenderCore):
    def similar(
        self,
        item_id: str,
        k: int,
        report: ServingReport | None = None,
        user_id: str | None = None,
        treatment: Treatment = PRODUCTION_TREATMENT,
    ) -> dict:
        """Similar items; with ``user_id``, a wider pool of them re-ordered half by similarity, half by
        the shopper's taste, the shopper's purchases left out."""
        report = self.start(report, frozenset({INDEX}))
        recommendation_id = str(uuid.uuid4())
        self._rows([item_id])
        degraded, state = False, None
        if user_id is not None:
            with report.stage(STORE):
                shopper, degraded = self.shopper(user_id, report)
            state = self.user_state(shopper)
        purchased = np.fromiter(state.purchased if state is not None else (), dtype=np.int64)
        personalized = False

        def page_of(arm: Arm) -> list[Scored]:
            nonlocal personalized
            if arm.policy is not None:
                with report.stage(RETRIEVAL):
                    candidates = self._without(self.policy_list(arm.policy, k + 1), item_id, k)
                    report.count_candidates(candidates.sources)
                keep = ~np.isin(candidates.rows, purchased)
                sources = [s for s, kept in zip(candidates.sources, keep.tolist(), strict=True) if kept]
                return self._scored(candidates.rows[keep], best_scores(candidates)[keep], sources)
            pool = k if state is None else max(SIMILAR_POOL_PER_SLOT * k, MIN_SIMILAR_POOL)
            with report.stage(RETRIEVAL):
                candidates = self._similar_candidates(item_id, pool, report)
            scores, rows, sources = best_scores(candidates), candidates.rows, candidates.sources
            if state is not None:
                keep = ~np.isin(rows, purchased)
                rows, scores = rows[keep], scores[keep]
                sources = [source for source, kept in zip(sources, keep.tolist(), strict=True) if kept]
                if state.vector is not None and len(rows):
                    personalized = True
                    closeness = 1.0 - np.arange(len(rows)) / len(rows)  # the similar items' own order
                    taste = self.items.item_factors[rows] @ state.vector
                    spread = float(taste.max() - taste.min())
                    taste = (taste - taste.min()) / spread if spread > 0 else np.ones(len(rows))
                    scores = 0.5 * closeness + 0.5 * taste
                    order = best_positions(scores, len(scores), self.items.tie_rank[rows])
                    rows, scores, sources = rows[order], scores[order], [sources[i] for i in order]
            return self._scored(rows[:k], scores[:k], sources[:k])

        page = self.arms_pages(treatment, k, recommendation_id, report, page_of)
        return self._response(
            user_id,
            page[:k],
            degraded,
            surface="similar",
            personalized=personalized,
            report=report,
            treatment=treatment,
            recommendation_id=recommendation_id,
        )

    def _similar_candidates(self, item_id: str, pool: int, report: ServingReport) -> Candidates:
        candidates = None
        if not self.without_index:
            try:
                candidates = retrieval.similar(self.items, item_id, pool, self.items.in_stock_mask)
            except Exception as error:  # a broken index must not fail the page
                logger.exception("similar items failed, serving popularity")
                report.fallback(INDEX, f"{type(error).__name__}: {error}")
        if candidates is None:
            popular = retrieval.popular(self.items, pool + 1, exclude=self.items.out_of_stock)
            candidates = self._without(popular, item_id, pool)
        report.count_candidates(candidates.sources)
        return candidates

    def _without(self, candidates: Candidates, item_id: str, k: int) -> Candidates:
        """``candidates`` less the item itself, at most ``k``."""
        keep = candidates.rows != self.items.catalog.row_of[item_id]
        return Candidates(
            rows=candidates.rows[keep][:k],
            scores={name: values[keep][:k] for name, values in candidates.scores.items()},
            sources=[s for s, kept in zip(candidates.sources, keep.tolist(), strict=True) if kept][:k],
        )

    def popular(
        self,
        k: int,
        category: str | None = None,
        report: ServingReport | None = None,
        window: int | None = None,
        user_id: str | None = None,
        treatment: Treatment = PRODUCTION_TREATMENT,
    ) -> dict:
        """Best sellers; with ``window`` (hours), what is trending now: the event processor's live counts, as
        the compactor summarised each hour (within about a minute), else (no counts yet, or the store
        failing) the model's trending signal. A
        holdout's policy names the list itself (``popularity`` or the model's ``trending``)."""
        report = self.start(report, frozenset())
        recommendation_id = str(uuid.uuid4())
        degraded = False

        def page_of(arm: Arm) -> list[Scored]:
            nonlocal degraded
            with report.stage(RETRIEVAL):
                candidates = None
                if arm.policy is not None:
                    candidates = self.policy_list(arm.policy, k, category)
                elif window is not None:
                    candidates, degraded = self._live_trending(k, category, window, report)
                if candidates is None:
                    candidates = retrieval.popular(
                        self.items, k, category, trending=window is not None, exclude=self.items.out_of_stock
                    )
                report.count_candidates(candidates.sources)
            scores = next(iter(candidates.scores.values()))
            return self._scored(candidates.rows, scores, candidates.sources)

        page = self.arms_pages(treatment, k, recommendation_id, report, page_of)
        return self._response(
            user_id,
            page,
            degraded,
            surface="popular",
            report=report,
            treatment=treatment,
            recommendation_id=recommendation_id,
        )

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
        ]
        if not ranked:
            return None, False
        rows = np.array([row for row, _ in ranked], dtype=np.int64)
        scores = np.array([score for _, score in ranked], dtype=np.float64)
        # equal counts: the model's tie order (recent popularity, recency), not the item ids'
        best = best_positions(scores, k, self.items.tie_rank[rows])
        rows, scores = rows[best], scores[best]
        return Candidates(rows=rows, scores={TRENDING: scores}, sources=[TRENDING] * len(rows)), False

    def bought_together(
        self,
        item_id: str,
        k: int,
        report: ServingReport | None = None,
        user_id: str | None = None,
        treatment: Treatment = PRODUCTION_TREATMENT,
    ) -> dict:
        """Frequently bought together: basket neighbours, then shopper-level ones when baskets are few.
        ``user_id`` only places the shopper in an experiment: the list is not personalized."""
        report = self.start(report, frozenset())
        recommendation_id = str(uuid.uuid4())
        self._rows([item_id])

        def page_of(arm: Arm) -> list[Scored]:
            with report.stage(RETRIEVAL):
                if arm.policy is not None:
                    candidates = self._without(self.policy_list(arm.policy, k + 1), item_id, k)
                else:
                    candidates = retrieval.bought_together(self.items, item_id, k, self.items.in_stock_mask)
                report.count_candidates(candidates.sources)
            return self._scored(candidates.rows, best_scores(candidates), candidates.sources)

        page = self.arms_pages(treatment, k, recommendation_id, report, page_of)
        return self._response(
            user_id,
            page,
            False,
            surface="bought-together",
            report=report,
            treatment=treatment,
            recommendation_id=recommendation_id,
        )
