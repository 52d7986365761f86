"""What the tuning hands the job: the chosen values, what the model serves with, and the search's record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from merchandiser.catalog import ItemModel
from merchandiser.reranking import FALLBACK, LONG_TAIL
from merchandiser.retrieval import SOURCE_SHARES
from training.fit import Hyperparameters, UserHistory


@dataclass(frozen=True)
class ServingChoices:
    """What the model serves with beyond its artifacts, written to its manifest and read by serving."""

    source_shares: dict[str, float] = field(default_factory=lambda: dict(SOURCE_SHARES))
    page_rules: dict[str, float] = field(default_factory=dict)  # over RetailerRules' defaults
    fallback: dict[str, Any] = field(default_factory=lambda: {"engaged": False})
    long_tail: dict[str, Any] = field(default_factory=lambda: {"engaged": False, "strength": 0.0})

    def manifest(self) -> dict[str, Any]:
        return {
            "source_shares": self.source_shares,
            "page_rules": self.page_rules,
            FALLBACK: self.fallback,
            LONG_TAIL: self.long_tail,
        }

    def apply(self, items: ItemModel) -> ItemModel:
        """``items`` serving with these choices (its manifest updated in place), as the written model will."""
        items.manifest.update(self.manifest())
        return items


@dataclass(frozen=True)
class Trial:
    stage: str
    number: int  # over the whole search
    value: float
    params: dict[str, Any]
    seconds: float  # CPU

    def record(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "number": self.number,
            "ndcg@10": round(self.value, 6),
            "params": {k: round(v, 6) if isinstance(v, float) else v for k, v in self.params.items()},
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Tuned:
    hp: Hyperparameters  # the chosen retrieval, ranker and simple-list values over the job's own
    choices: ServingChoices
    summary: dict[str, Any]  # evaluation.json and the manifest: ``tuning``
    retrieval: tuple[ItemModel, dict[str, UserHistory]] | None = None  # the best fit on ``train``
