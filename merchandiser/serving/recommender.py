"""The request path: retrieval, then ranking, then re-ranking, composed in one process.

Each stage is reachable on its own (candidates, rank a given list, re-rank a given list) and the
surfaces compose them: the shopper's surfaces here, the item surfaces in ``item_surfaces``, the shared
parts in ``core``. Every response carries a recommendation id, the model version and the shopper's
experiment and variant (``treatment``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import numpy as np

from merchandiser import retrieval
from merchandiser.reranking import (
    Rules,
    Scored,
    daily_seed,
    page_rules,
    page_scores,
    ranked_items,
    rerank,
    rules,
    tuned_rules,
)
from merchandiser.retrieval import TRENDING
from merchandiser.serving.core import CANDIDATES, best_scores
from merchandiser.serving.item_surfaces import ItemSurfaces
from merchandiser.serving.report import (
    EXPLORATION,
    INDEX,
    RANKER,
    RANKING,
    RERANKING,
    RETRIEVAL,
    STORE,
    ServingReport,
)
from merchandiser.serving.treatment import PRODUCTION_TREATMENT, RANKER_ORDER, Arm, Treatment
from merchandiser.settings import RuleOptions

SURFACES = ("home", "category")


OUT_OF_STOCK = "out of stock"  # the reason of an item of a caller's list that cannot be sold now


class Recommender(ItemSurfaces):
    def recommend(
        self,
        user_id: str,
        k: int,
        surface: str = "home",
        category: str | None = None,
        report: ServingReport | None = None,
        context: Mapping[str, str] | None = None,
        treatment: Treatment = PRODUCTION_TREATMENT,
    ) -> dict:
        report = self.start(report, frozenset({INDEX, RANKER, EXPLORATION}))
        recommendation_id = str(uuid.uuid4())
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        with report.stage(RETRIEVAL):
            state = self.user_state(shopper, context)
        # The page rules the model's training chose, under the retailer's, under a variant's: what the
        # variant pins wins, then what the retailer set; every arm's page goes through the same rules.
        retailer = tuned_rules(self.items, treatment.rules_over(self.merchandising))
        # Items from the current session belong on a "recently viewed" rail, not in "for you", unless the
        # retailer wants them there (shoppers who buy what they just viewed)
        seen = frozenset(() if retailer.show_session_items else (event.item_id for event in shopper.session))
        now = self.clock()

        def page_of(arm: Arm) -> list[Scored]:
            with report.stage(RETRIEVAL):
                if arm.policy is not None:
                    candidates = self.policy_list(arm.policy, CANDIDATES, category)
                    report.count_candidates(candidates.sources)
                else:
                    candidates = self.retrieve(state, CANDIDATES, report, category, arm.source_shares)
            with report.stage(RANKING):
                if arm.policy is not None:  # the list's own order and scores
                    scores = best_scores(candidates)
                else:
                    scores = self.rank_candidates(state, candidates, report, arm.order)
            with report.stage(RERANKING):
                if arm.policy is None and arm.order == RANKER_ORDER:
                    # the pipeline's page orders by the ranker's scores, blended with an anchor (a simple
                    # list, or a personal one scored from the shopper's history) when the training job
                    # found it better on its validation window (merchandiser.reranking.fallback), then
                    # less the long-tail correction the job chose (merchandiser.reranking.popularity); a
                    # pinned ALS order or a holdout stays as pinned
                    scores = page_scores(self.items, candidates, scores, state)
                the_rules = page_rules(
                    self.items,
                    retailer,
                    k,
                    candidates,
                    scores,
                    exclude=shopper.purchased | seen,
                    seed=daily_seed(user_id, now),
                    now=now,
                    category=category,
                    # Thompson draws of this page: reproducible from its recommendation id
                    explore_seed=recommendation_id,
                )
                return rerank(ranked_items(self.items, candidates, scores, k), the_rules)

        page = self.arms_pages(treatment, k, recommendation_id, report, page_of)
        personal = any(arm.policy is None for arm in treatment.arms)
        return self._response(
            user_id,
            page,
            degraded,
            surface=surface,
            personalized=personal and state.vector is not None,
            report=report,
            state=state,
            treatment=treatment,
            recommendation_id=recommendation_id,
        )

    def candidates(self, user_id: str, k: int, report: ServingReport | None = None) -> dict:
        """The retrieval stage alone: a tool for the storefront's own ranking, not a page (no experiment)."""
        report = self.start(report, frozenset({INDEX}))
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        with report.stage(RETRIEVAL):
            candidates = self.retrieve(self.user_state(shopper), k, report)
        page = self._scored(candidates.rows, best_scores(candidates), candidates.sources)[:k]
        return self._response(user_id, page, degraded, surface="candidates", report=report)

    def rank(
        self,
        user_id: str,
        item_ids: Sequence[str],
        k: int | None = None,
        report: ServingReport | None = None,
        treatment: Treatment = PRODUCTION_TREATMENT,
    ) -> dict:
        """Personalized order of a list the caller already has (search results, a category page).

        Ids the catalogue does not know (yet) stay on the list, after the ranked ones, with reason
        "unknown item": one stale id in a search result must not cost the shopper the whole page. On an
        interleaved page they play for no team (the impression's team list stops before them). Items out
        of stock stay on the list too, after the ranked ones, with reason "out of stock" and
        ``in_stock: false``, for the storefront to show greyed out or leave out; they are never ranked.
        """
        report = self.start(report, frozenset({RANKER}))
        recommendation_id = str(uuid.uuid4())
        requested = list(dict.fromkeys(item_ids))  # first occurrence of a repeated id wins
        row_of = self.items.catalog.row_of
        sold_out = self.items.out_of_stock
        known = self._rows([item_id for item_id in requested if item_id in row_of])
        rows = np.array([row for row in known.tolist() if row not in sold_out], dtype=np.int64)
        limit = k or len(requested)
        with report.stage(STORE):
            shopper, degraded = self.shopper(user_id, report)
        page: list[Scored] = []
        if len(rows):
            with report.stage(RANKING):
                state = self.user_state(shopper)
                candidates = retrieval.candidates_for(self.items, state, rows)

            def page_of(arm: Arm) -> list[Scored]:
                with report.stage(RANKING):
                    if arm.policy is not None:  # the given list in the simple list's order
                        signal = (
                            self.items.signals.trending if arm.policy == TRENDING else self.items.popularity
                        )
                        scores = np.asarray(signal, dtype=np.float64)[rows]
                    else:
                        scores = self.rank_candidates(state, candidates, report, arm.order)
                with report.stage(RERANKING):
                    return rerank(self._scored(rows, scores, ["request"] * len(rows)), Rules(k=limit))

            page = self.arms_pages(treatment, limit, recommendation_id, report, page_of)
        response = self._response(
            user_id,
            page,
            degraded,
            surface="rank",
            report=report,
            treatment=treatment,
            recommendation_id=recommendation_id,
        )
        catalog = self.items.catalog
        response["items"] += [
            {"item_id": str(catalog.item_ids[row]), "score": 0.0, "reason": OUT_OF_STOCK, "source": "request",
             "title": str(catalog.titles[row]), "category": str(catalog.categories[row]), "in_stock": False}
            for row in known.tolist()
            if row in sold_out
        ][: max(0, limit - len(response["items"]))]  # fmt: skip
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
