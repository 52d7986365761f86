"""The serving-facing model: one loaded model dir answering candidates, scores, popular and similar items.

Loaded once per Lambda container (``Model.load``); training evaluates the very same object
(``Model(...)`` from in-memory parts) so offline metrics measure the serving code path.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hnswlib
import lightgbm as lgb
import numpy as np

from merchandiser import artifacts
from merchandiser.als import fold_in
from merchandiser.candidate_sources import (
    ANN,
    POPULARITY,
    Candidates,
    Proposal,
    ann_source,
    merge,
    popularity_source,
)
from merchandiser.features import ranking_features

ANN_SHARE = 0.8  # of the candidate places when the user has a vector; popularity gets the rest
REQUIRED_FILES = (artifacts.CATALOG, artifacts.ITEM_FACTORS, artifacts.POPULARITY, artifacts.INDEX)


@dataclass(frozen=True)
class UserState:
    vector: np.ndarray | None  # folded-in user vector, None when nothing known
    history: dict[int, float]  # item row -> weight (long-term + session)
    recent: list[int]  # session item rows, most recent first
    purchased: frozenset[int]


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
        als = manifest.get("als", {})
        self.regularization = float(als.get("regularization", 0.05))
        self.alpha = float(als.get("alpha", 1.0))
        # computed once: every fold-in needs Y'Y
        self.gram = item_factors.astype(np.float64).T @ item_factors.astype(np.float64)

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
        return cls(manifest, catalog, item_factors, popularity, index, ranker)

    def user_state(
        self,
        history: Mapping[str, float],
        session: Sequence[tuple[str, float]],
        purchased: Iterable[str],
    ) -> UserState:
        row_of = self.catalog.row_of
        weights: dict[int, float] = {}
        for item_id, weight in history.items():
            if item_id in row_of:
                weights[row_of[item_id]] = weights.get(row_of[item_id], 0.0) + float(weight)
        recent: list[int] = []
        for item_id, weight in session:
            if item_id in row_of:
                row = row_of[item_id]
                weights[row] = weights.get(row, 0.0) + float(weight)
                if row not in recent:
                    recent.append(row)
        bought = frozenset(row_of[item_id] for item_id in purchased if item_id in row_of)
        return self.state_from_rows(weights, recent, bought)

    def state_from_rows(
        self, history: dict[int, float], recent: list[int], purchased: frozenset[int]
    ) -> UserState:
        """``user_state`` once ids are rows (training builds states this way)."""
        positive = {row: weight for row, weight in history.items() if weight > 0}
        vector = None
        if positive:
            rows = np.fromiter(positive, dtype=np.int64, count=len(positive))
            values = np.fromiter(positive.values(), dtype=np.float64, count=len(positive))
            vector = fold_in(self.item_factors, self.gram, rows, values, self.regularization, self.alpha)
        return UserState(vector=vector, history=history, recent=recent, purchased=purchased)

    def candidates(self, user: UserState, k: int = 1000, category: str | None = None) -> Candidates:
        """ANN (when the user has a vector) and popularity candidates; the user's purchases are left out."""
        allowed = None if category is None else self.catalog.categories == category
        proposals: dict[str, Proposal] = {}
        quotas: dict[str, int] = {}
        if user.vector is not None:
            # ask for more than k: purchased items are dropped by the merge
            proposals[ANN] = ann_source(self.index, user.vector, k + len(user.purchased), allowed)
            quotas[ANN] = math.ceil(ANN_SHARE * k)
        proposals[POPULARITY] = popularity_source(
            self.popularity, k, self.catalog.categories, category, exclude=user.purchased
        )
        quotas[POPULARITY] = k - quotas.get(ANN, 0)
        return merge(proposals, quotas, k, exclude=user.purchased)

    def score(self, user: UserState, candidates: Candidates, now: float) -> np.ndarray:
        """float64 score per candidate, higher is better."""
        if len(candidates) == 0:
            return np.empty(0, dtype=np.float64)
        if self.ranker is not None:
            features = ranking_features(
                user, candidates, self.catalog, self.popularity, self.item_factors, now
            )
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
        ann = np.full(len(rows), np.nan)
        if user.vector is not None:
            ann = self.item_factors[rows].astype(np.float64) @ user.vector.astype(np.float64)
        popularity = self.popularity[rows].astype(np.float64)
        return Candidates(
            rows=rows, scores={ANN: ann, POPULARITY: popularity}, sources=["request"] * len(rows)
        )

    def popular(self, k: int, category: str | None = None) -> Candidates:
        proposal = popularity_source(self.popularity, k, self.catalog.categories, category)
        return merge({POPULARITY: proposal}, {POPULARITY: k}, k)

    def similar(self, item_id: str, k: int) -> Candidates:
        row = self.catalog.row_of[item_id]
        proposal = ann_source(self.index, self.item_factors[row], k + 1)
        return merge({ANN: proposal}, {ANN: k}, k, exclude=frozenset({row}))
