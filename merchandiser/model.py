"""The serving-facing model: one loaded model dir answering candidates, scores, popular and similar items.

Loaded once per Lambda container (``Model.load``); training evaluates the very same object
(``Model(...)`` from in-memory parts) so offline metrics measure the serving code path.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import hnswlib
import lightgbm as lgb
import numpy as np

from merchandiser import artifacts
from merchandiser.als import fold_in
from merchandiser.candidate_sources import (
    ALSO_VIEWED,
    ANN,
    BOUGHT_TOGETHER,
    CONTENT,
    POPULARITY,
    TRENDING,
    Candidates,
    Proposal,
    ann_source,
    merge,
    popularity_source,
    top_scores,
)
from merchandiser.features import ranking_features
from merchandiser.signals import Signals

# Share of the candidate places each source fills first (in this order); places a source cannot fill go
# to the others' next best. Measured per source in the training report (``models.<source>``).
SOURCE_SHARES: dict[str, float] = {
    ANN: 0.35,
    ALSO_VIEWED: 0.25,
    BOUGHT_TOGETHER: 0.1,
    CONTENT: 0.05,
    TRENDING: 0.1,
    POPULARITY: 0.15,
}
RECENT_ITEMS = 5  # the most recent items whose baskets feed "bought together"
RECENT_DECAY = 0.7  # weight of the n-th most recent item: RECENT_DECAY ** n
HISTORY_ITEMS = 100  # the heaviest history items that feed "also viewed"
REQUIRED_FILES = (artifacts.CATALOG, artifacts.ITEM_FACTORS, artifacts.POPULARITY, artifacts.INDEX)


@dataclass(frozen=True)
class UserState:
    vector: np.ndarray | None  # folded-in user vector, None when nothing known
    history: dict[int, float]  # item row -> weight (long-term + session)
    recent: list[int]  # item rows, most recent first (session, then the profile's latest)
    purchased: frozenset[int]
    category_seen: dict[str, float] = field(default_factory=dict)  # category -> last touch, epoch s
    segments: tuple[str, ...] = ()  # e.g. ("country=France",), most specific first


def best_of(rows: np.ndarray, scores: np.ndarray, k: int, exclude: frozenset[int]) -> Proposal:
    """The ``k`` best of ``rows`` by ``scores`` (ties: lower row first), ``exclude`` skipped."""
    if exclude:
        keep = ~np.isin(rows, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
        rows, scores = rows[keep], scores[keep]
    if len(rows) > k:
        top = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[top], scores[top]
    order = np.lexsort((rows, -scores))
    return Proposal(rows[order].astype(np.int64), scores[order].astype(np.float64))


def segment_keys(attributes: Mapping[str, str]) -> tuple[str, ...]:
    """``{"country": "France"}`` -> ``("country=France",)``, in a stable order."""
    return tuple(f"{name}={value}" for name, value in sorted(attributes.items()) if value not in ("", "nan"))


class Model:
    manifest: dict[str, Any]
    catalog: artifacts.Catalog
    version: str

    def __init__(
        self,
        manifest: dict[str, Any],
        catalog: artifacts.Catalog,
        item_factors: np.ndarray,
        popularity: np.ndarray,
        index: hnswlib.Index,
        ranker: lgb.Booster | None,
        signals: Signals | None = None,
    ) -> None:
        if item_factors.shape[0] != len(catalog) or popularity.shape != (len(catalog),):
            raise artifacts.BundleError(
                f"catalog has {len(catalog)} items but item_factors {item_factors.shape}"
                f" and popularity {popularity.shape}"
            )
        self.manifest = manifest
        self.catalog = catalog
        self.version = str(manifest.get("model_version", "unversioned"))
        self.item_factors = item_factors
        self.popularity = popularity
        self.index = index
        self.ranker = ranker
        self.signals = signals if signals is not None else Signals.empty(len(catalog))
        if self.signals.trending.shape != (len(catalog),):
            raise artifacts.BundleError(
                f"signals describe {len(self.signals.trending)} items, not {len(catalog)}"
            )
        self.placed_rows = np.flatnonzero(self.signals.placed)
        self._orders: dict[str, np.ndarray] = {}
        als = manifest.get("als", {})
        self.regularization = float(als.get("regularization", 0.05))
        self.alpha = float(als.get("alpha", 1.0))
        # computed once: every fold-in needs Y'Y (float32 product, then widened: the full float64
        # copies of a 100k-item catalogue cost most of a cold start)
        self.gram = (item_factors.T @ item_factors).astype(np.float64)

    @classmethod
    def load(cls, model_dir: Path) -> Model:
        model_dir = Path(model_dir)
        manifest = artifacts.read_manifest(model_dir, verify=artifacts.SERVING_FILES)
        for name in REQUIRED_FILES:
            if not (model_dir / name).is_file():
                raise artifacts.BundleError(f"{name} is missing from {model_dir}")
        try:
            catalog = artifacts.Catalog.load(model_dir / artifacts.CATALOG)
            item_factors = np.load(model_dir / artifacts.ITEM_FACTORS, allow_pickle=False)
            popularity = np.load(model_dir / artifacts.POPULARITY, allow_pickle=False)
            index = hnswlib.Index(space="ip", dim=int(item_factors.shape[1]))
            index.load_index(str(model_dir / artifacts.INDEX), max_elements=len(catalog))
            ranker = None
            if (model_dir / artifacts.RANKER).is_file():
                # threads are set per predict call (num_threads=1): params here would be ignored
                ranker = lgb.Booster(model_file=str(model_dir / artifacts.RANKER))
            signals = None
            if (model_dir / artifacts.SIGNALS).is_file():
                signals = Signals.load(model_dir / artifacts.SIGNALS)
        except (
            OSError,
            ValueError,
            KeyError,
            RuntimeError,
            IndexError,
            zipfile.BadZipFile,
            lgb.basic.LightGBMError,
        ) as error:
            raise artifacts.BundleError(f"cannot load the model in {model_dir}: {error}") from error
        return cls(manifest, catalog, item_factors, popularity, index, ranker, signals)

    def user_state(
        self,
        history: Mapping[str, float],
        session: Sequence[tuple[str, float]],
        purchased: Iterable[str],
        recent: Sequence[str] = (),
        category_seen: Mapping[str, float] | None = None,
        attributes: Mapping[str, str] | None = None,
        session_times: Sequence[float] = (),
    ) -> UserState:
        """Ids to rows: ``session`` (most recent first) adds to the history and leads ``recent``;
        ``session_times`` (epoch s, same order) refresh ``category_seen``."""
        row_of = self.catalog.row_of
        weights: dict[int, float] = {}
        for item_id, weight in history.items():
            if item_id in row_of:
                weights[row_of[item_id]] = weights.get(row_of[item_id], 0.0) + float(weight)
        latest: list[int] = []
        seen = dict(category_seen or {})
        for position, (item_id, weight) in enumerate(session):
            if item_id in row_of:
                row = row_of[item_id]
                weights[row] = weights.get(row, 0.0) + float(weight)
                if row not in latest:
                    latest.append(row)
                if position < len(session_times):
                    category = str(self.catalog.categories[row])
                    seen[category] = max(seen.get(category, 0.0), float(session_times[position]))
        for item_id in recent:
            if item_id in row_of and row_of[item_id] not in latest:
                latest.append(row_of[item_id])
        bought = frozenset(row_of[item_id] for item_id in purchased if item_id in row_of)
        return self.state_from_rows(weights, latest, bought, seen, segment_keys(attributes or {}))

    def state_from_rows(
        self,
        history: dict[int, float],
        recent: list[int],
        purchased: frozenset[int],
        category_seen: dict[str, float] | None = None,
        segments: tuple[str, ...] = (),
    ) -> UserState:
        """``user_state`` once ids are rows (training builds states this way)."""
        positive = {row: weight for row, weight in history.items() if weight > 0}
        vector = None
        if positive:
            rows = np.fromiter(positive, dtype=np.int64, count=len(positive))
            values = np.fromiter(positive.values(), dtype=np.float64, count=len(positive))
            vector = fold_in(self.item_factors, self.gram, rows, values, self.regularization, self.alpha)
        return UserState(
            vector=vector,
            history=history,
            recent=recent,
            purchased=purchased,
            category_seen=category_seen or {},
            segments=segments,
        )

    def proposals(self, user: UserState, k: int, category: str | None = None) -> dict[str, Proposal]:
        """What every source proposes for ``user`` (at most ``k`` each), purchases left out."""
        allowed = None if category is None else self.catalog.categories == category
        exclude = user.purchased
        proposals: dict[str, Proposal] = {}
        if user.vector is not None:
            # ask for more than k: purchased items are dropped by the merge
            proposals[ANN] = ann_source(self.index, user.vector, k + len(exclude), allowed)
        history = sorted(user.history.items(), key=lambda pair: (-pair[1], pair[0]))[:HISTORY_ITEMS]
        if history:
            rows = np.array([row for row, _ in history], dtype=np.int64)
            weights = np.array([weight for _, weight in history], dtype=np.float64)
            dense = self.signals.also_viewed.scores(rows, weights / weights.sum())
            proposals[ALSO_VIEWED] = top_scores(dense, k, allowed, exclude)
        if user.recent:
            rows = np.array(user.recent[:RECENT_ITEMS], dtype=np.int64)
            dense = self.signals.bought_together.scores(rows, RECENT_DECAY ** np.arange(len(rows)))
            proposals[BOUGHT_TOGETHER] = top_scores(dense, k, allowed, exclude)
        if user.vector is not None and len(self.placed_rows):
            # exact search over the items placed by their attributes (no interactions yet)
            placed, vectors = self.placed_rows, self.placed_factors
            if allowed is not None:
                keep = allowed[placed]
                placed, vectors = placed[keep], vectors[keep]
            proposals[CONTENT] = best_of(placed, vectors @ user.vector.astype(np.float32), k, exclude)
        if allowed is None:
            # static scores: their order is computed once per model, a request only skips exclusions
            proposals[TRENDING] = self.ordered_top(TRENDING, self.signals.trending, k, exclude, dense=True)
            segment = self.segment_popularity(user.segments)
            key = next((s for s in user.segments if s in self.signals.segments), POPULARITY)
            proposals[POPULARITY] = self.ordered_top(key, segment, k, exclude, dense=False)
        else:
            proposals[TRENDING] = top_scores(self.signals.trending, k, allowed, exclude)
            proposals[POPULARITY] = popularity_source(
                self.segment_popularity(user.segments), k, self.catalog.categories, category, exclude=exclude
            )
        return proposals

    def candidates(self, user: UserState, k: int = 1000, category: str | None = None) -> Candidates:
        """Every source's proposals merged with ``SOURCE_SHARES`` quotas into ``k`` unique candidates."""
        return self.merge_proposals(self.proposals(user, k, category), k, user.purchased)

    @staticmethod
    def merge_proposals(proposals: Mapping[str, Proposal], k: int, exclude: frozenset[int]) -> Candidates:
        quotas = {source: math.ceil(SOURCE_SHARES[source] * k) for source in proposals}
        return merge(proposals, quotas, k, exclude=exclude)

    @cached_property
    def placed_factors(self) -> np.ndarray:
        return np.ascontiguousarray(self.item_factors[self.placed_rows], dtype=np.float32)

    def ordered_top(
        self, key: str, scores: np.ndarray, k: int, exclude: frozenset[int], dense: bool
    ) -> Proposal:
        """The ``k`` best rows of a static score vector (positive scores only), ``exclude`` skipped; the
        full order is sorted once per model and key (ties: lower row first)."""
        order = self._orders.get(key)
        if order is None:
            positive = np.flatnonzero(scores > 0)
            order = positive[np.lexsort((positive, -scores[positive]))]
            self._orders[key] = order
        head = order[: k + len(exclude)]
        if exclude:
            head = head[~np.isin(head, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))]
        head = head[:k]
        return Proposal(head.astype(np.int64), scores[head].astype(np.float64), scores if dense else None)

    @cached_property
    def popularity_percentile(self) -> np.ndarray:
        """Each item's popularity rank over the catalogue size: 0 the least, near 1 the most popular."""
        ranks = np.empty(len(self.popularity), dtype=np.float64)
        ranks[np.argsort(self.popularity, kind="stable")] = np.arange(len(self.popularity))
        return ranks / max(len(self.popularity), 1)

    def segment_popularity(self, segments: Sequence[str]) -> np.ndarray:
        """Popularity among the shopper's first known segment, overall popularity otherwise."""
        for key in segments:
            if key in self.signals.segments:
                return self.signals.segments[key]
        return self.popularity

    def score(self, user: UserState, candidates: Candidates, now: float) -> np.ndarray:
        """float64 score per candidate, higher is better."""
        if len(candidates) == 0:
            return np.empty(0, dtype=np.float64)
        if self.ranker is not None:
            features = ranking_features(user, candidates, self, now)
            return np.asarray(self.ranker.predict(features, num_threads=1), dtype=np.float64)
        rows = candidates.rows
        primary = np.zeros(len(rows))
        if user.vector is not None:
            primary = self.item_factors[rows].astype(np.float64) @ user.vector.astype(np.float64)
        popularity = np.log1p(self.popularity[rows].astype(np.float64))
        # popularity only separates (near) equal preferences
        return primary + 1e-6 * popularity / max(float(popularity.max()), 1.0)

    def candidates_for(self, user: UserState, rows: np.ndarray) -> Candidates:
        """A caller's own list (unique rows) as candidates, scored by every source as retrieval would."""
        rows = np.asarray(rows, dtype=np.int64)
        scores: dict[str, np.ndarray] = {}
        for source, proposal in self.proposals(user, 0).items():
            column = np.full(len(rows), np.nan)
            if proposal.dense is not None:
                column = proposal.dense[rows].astype(np.float64)
                column[column == 0] = np.nan
            scores[source] = column
        if user.vector is not None:
            scores[ANN] = self.item_factors[rows].astype(np.float64) @ user.vector.astype(np.float64)
        scores[POPULARITY] = self.segment_popularity(user.segments)[rows].astype(np.float64)
        return Candidates(rows=rows, scores=scores, sources=["request"] * len(rows))

    def popular(self, k: int, category: str | None = None, trending: bool = False) -> Candidates:
        source = TRENDING if trending else POPULARITY
        scores = self.signals.trending if trending else self.popularity
        proposal = popularity_source(scores, k, self.catalog.categories, category)
        return merge({source: proposal}, {source: k}, k)

    def similar(self, item_id: str, k: int) -> Candidates:
        """Nearest items in the ALS space, then those most often viewed by the same shoppers."""
        row = self.catalog.row_of[item_id]
        itself = frozenset({row})
        ann = ann_source(self.index, self.item_factors[row], k + 1)
        neighbours, similarity = self.signals.also_viewed.of(row)
        viewed = Proposal(neighbours.astype(np.int64), similarity.astype(np.float64))
        quotas = {ANN: math.ceil(k / 2), ALSO_VIEWED: k // 2}
        return merge({ANN: ann, ALSO_VIEWED: viewed}, quotas, k, exclude=itself)

    def bought_together(self, item_id: str, k: int) -> Candidates:
        """Items bought in the same baskets, topped up with the same shoppers' items when baskets are few."""
        row = self.catalog.row_of[item_id]
        proposals = {}
        for source, neighbours in (
            (BOUGHT_TOGETHER, self.signals.bought_together),
            (ALSO_VIEWED, self.signals.also_viewed),
        ):
            rows, similarity = neighbours.of(row)
            proposals[source] = Proposal(rows.astype(np.int64), similarity.astype(np.float64))
        return merge(proposals, {BOUGHT_TOGETHER: k}, k, exclude=frozenset({row}))
