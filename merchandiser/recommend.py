"""The request path: retrieval, then ranking, then re-ranking, composed in one process.

Each stage is reachable on its own (candidates, rank a given list, re-rank a given list) and the
surfaces compose them. Every response carries a recommendation id, the model version and the
shopper's experiment variant.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from merchandiser import experiments
from merchandiser.errors import UnknownItemError
from merchandiser.model import Model, UserState
from merchandiser.reranking import Rules, Scored, category_cap, rerank
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

    def shopper(self, user_id: str) -> tuple[ShopperRecord, bool]:
        """The shopper's profile and session; a store failure serves the shopper as unknown."""
        try:
            return self.store.shopper(user_id), False
        except Exception:  # any DynamoDB error or timeout: degrade, never fail the page
            logger.exception("feature store unavailable, serving without user features")
            return ShopperRecord(user_id=user_id), True

    def user_state(self, shopper: ShopperRecord) -> UserState:
        session = [(event.item_id, event.weight) for event in shopper.session]
        return self.model.user_state(shopper.history, session, shopper.purchased)

    def recommend(self, user_id: str, k: int, surface: str = "home", category: str | None = None) -> dict:
        shopper, degraded = self.shopper(user_id)
        state = self.user_state(shopper)
        candidates = self.model.candidates(state, k=CANDIDATES, category=category)
        scores = self.model.score(state, candidates, now=self.clock())
        # Items from the current session belong on a "recently viewed" rail, not in "for you".
        seen = frozenset(event.item_id for event in shopper.session)
        rules = Rules(
            k=k,
            exclude=shopper.purchased | seen,
            category=category,
            max_per_category=None if category else category_cap(k),
        )
        page = rerank(self._scored(candidates.rows, scores, candidates.sources), rules)
        return self._response(user_id, page, degraded, surface=surface, personalized=state.vector is not None)

    def candidates(self, user_id: str, k: int) -> dict:
        shopper, degraded = self.shopper(user_id)
        candidates = self.model.candidates(self.user_state(shopper), k=k)
        scores = np.nan_to_num(np.nanmax(np.vstack(list(candidates.scores.values())), axis=0), nan=0.0)
        page = self._scored(candidates.rows, scores, candidates.sources)[:k]
        return self._response(user_id, page, degraded, surface="candidates")

    def rank(self, user_id: str, item_ids: Sequence[str], k: int | None = None) -> dict:
        """Personalized order of a list the caller already has (search results, a category page)."""
        rows = self._rows(list(dict.fromkeys(item_ids)))  # first occurrence of a repeated id wins
        shopper, degraded = self.shopper(user_id)
        state = self.user_state(shopper)
        candidates = self.model.candidates_for(state, rows)
        scores = self.model.score(state, candidates, now=self.clock())
        page = rerank(self._scored(rows, scores, ["request"] * len(rows)), Rules(k=k or len(rows)))
        return self._response(user_id, page, degraded, surface="rank")

    def apply_rules(self, user_id: str, items: Sequence[tuple[str, float]], k: int) -> dict:
        """Business rules alone on a scored list: purchased and out-of-stock filtered, category cap."""
        rows = self._rows([item_id for item_id, _ in items])
        shopper, degraded = self.shopper(user_id)
        scores = np.array([score for _, score in items], dtype=np.float64)
        rules = Rules(k=k, exclude=shopper.purchased, max_per_category=category_cap(k))
        page = rerank(self._scored(rows, scores, ["request"] * len(rows)), rules)
        return self._response(user_id, page, degraded, surface="rerank")

    def similar(self, item_id: str, k: int) -> dict:
        self._rows([item_id])
        candidates = self.model.similar(item_id, k=k)
        page = self._scored(candidates.rows, candidates.scores["ann"], candidates.sources)
        return self._response(None, page, False, surface="similar")

    def popular(self, k: int, category: str | None = None) -> dict:
        candidates = self.model.popular(k=k, category=category)
        page = self._scored(candidates.rows, candidates.scores["popularity"], candidates.sources)
        return self._response(None, page, False, surface="popular")

    def _rows(self, item_ids: Sequence[str]) -> np.ndarray:
        row_of = self.model.catalog.row_of
        unknown = [item_id for item_id in item_ids if item_id not in row_of]
        if unknown:
            raise UnknownItemError(f"unknown item ids: {', '.join(unknown[:10])}")
        return np.array([row_of[item_id] for item_id in item_ids], dtype=np.int64)

    def _scored(self, rows: np.ndarray, scores: np.ndarray, sources: Sequence[str]) -> list[Scored]:
        catalog = self.model.catalog
        return [
            Scored(
                item_id=str(catalog.item_ids[row]),
                score=float(score),
                source=source,
                category=str(catalog.categories[row]),
                in_stock=bool(catalog.in_stock[row]),
            )
            for row, score, source in zip(rows.tolist(), np.asarray(scores).tolist(), sources, strict=True)
        ]

    def _response(
        self,
        user_id: str | None,
        page: list[Scored],
        degraded: bool,
        surface: str,
        personalized: bool = False,
    ) -> dict[str, Any]:
        catalog = self.model.catalog
        return {
            "recommendation_id": str(uuid.uuid4()),
            "model_version": self.model.version,
            "variant": experiments.assign(user_id) if user_id else "production",
            "surface": surface,
            "user_id": user_id,
            "personalized": personalized,
            "degraded": degraded,
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
