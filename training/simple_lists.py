"""The best simple lists, tuned on the validation window: what the pipeline's page must never lose to.

- ``pop_recent``: recency-weighted popularity, half-life 1 hour to 8 weeks, events by type weight or
  counted once (the ``recent_popularity`` source, ranker feature and tie-break use the chosen settings);
- ``trending``: the same over the last 6 hours to 8 weeks only (the ``trending`` source uses them).

Each list is one score per item (``events.EventArrays.scores``), the same for every shopper minus what they
bought. ``tune_simple_lists`` searches each with Optuna's TPE (fixed seed, the current settings first) on
the validation users of ``training.tuning`` and reports the validation NDCG@10; ``training.anchors`` (the
tuned anchors of the benchmark) can take its place when it lands: it returns the same settings per name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna

from training.events import HOURS_PER_DAY, WEIGHTINGS, EventArrays, ListSettings
from training.fit import Hyperparameters
from training.metrics import ndcg_at_k

logger = logging.getLogger(__name__)

SIMPLE_LISTS = ("pop_recent", "trending")
K = 10  # the objective is NDCG@10
HOURS_PER_WEEK = 7 * HOURS_PER_DAY


@dataclass(frozen=True)
class ListObjective:
    """Who the lists are scored on: shoppers, what each touched in the window, what each had bought."""

    users: Sequence[str]
    relevant: Mapping[str, set[int]]
    purchased: Mapping[str, frozenset[int]]
    tie: np.ndarray  # int64 per item row: equal scores, lower first

    def ndcg(self, scores: np.ndarray) -> float:
        """Mean NDCG@10 of the list ``scores`` ranks, each shopper's purchases skipped."""
        if not self.users:
            return 0.0
        order = np.lexsort((self.tie, -np.asarray(scores, dtype=np.float64)))
        head = order[: K + max((len(bought) for bought in self.purchased.values()), default=0)].tolist()
        total = 0.0
        for user in self.users:
            bought = self.purchased.get(user, frozenset())
            shown = [row for row in head if row not in bought][:K]
            total += ndcg_at_k(shown, self.relevant[user], K)
        return total / len(self.users)


@dataclass(frozen=True)
class SimpleListResult:
    name: str
    settings: ListSettings
    validation_ndcg: float
    default_validation_ndcg: float
    trials: int

    def summary(self) -> dict[str, Any]:
        return {
            "params": {
                "half_life_hours": round(self.settings.half_life_hours, 3),
                "weighting": self.settings.weighting,
                "window_hours": None
                if self.settings.window_hours is None
                else round(self.settings.window_hours, 3),
            },
            "validation_ndcg@10": round(self.validation_ndcg, 6),
            "default_validation_ndcg@10": round(self.default_validation_ndcg, 6),
            "trials": self.trials,
        }


def current_settings(name: str, hp: Hyperparameters) -> ListSettings:
    """The settings the job would use untuned (its hyperparameters')."""
    if name == "pop_recent":
        return hp.recent_list()
    if name == "trending":
        return hp.trending_list()
    raise ValueError(f"unknown simple list {name!r}: one of {', '.join(SIMPLE_LISTS)}")


def with_settings(hp: Hyperparameters, name: str, settings: ListSettings) -> Hyperparameters:
    """``hp`` with the list's settings in the hyperparameters that carry them into the model."""
    if name == "pop_recent":
        return replace(
            hp, recent_half_life_hours=settings.half_life_hours, recent_weighting=settings.weighting
        )
    window = 0.0 if settings.window_hours is None else settings.window_hours / HOURS_PER_DAY
    return replace(
        hp,
        trending_half_life_days=settings.half_life_hours / HOURS_PER_DAY,
        trending_weighting=settings.weighting,
        trending_window_days=window,
    )


def _suggest(name: str, trial: optuna.Trial) -> ListSettings:
    half_life = trial.suggest_float("half_life_hours", 1.0, 8 * HOURS_PER_WEEK, log=True)
    weighting = str(trial.suggest_categorical("weighting", WEIGHTINGS))
    if name == "pop_recent":
        return ListSettings(half_life, weighting)
    window = trial.suggest_float("window_hours", 6.0, 8 * HOURS_PER_WEEK, log=True)
    return ListSettings(half_life, weighting, window)


def _params(name: str, settings: ListSettings) -> dict[str, Any]:
    """The settings as the search's parameters, clipped into its ranges (an enqueued trial must fit)."""
    params: dict[str, Any] = {
        "half_life_hours": float(np.clip(settings.half_life_hours, 1.0, 8 * HOURS_PER_WEEK)),
        "weighting": settings.weighting,
    }
    if name == "trending":
        window = 8 * HOURS_PER_WEEK if settings.window_hours is None else settings.window_hours
        params["window_hours"] = float(np.clip(window, 6.0, 8 * HOURS_PER_WEEK))
    return params


def tune_simple_lists(
    events: EventArrays,
    now: float,
    objective: ListObjective,
    hp: Hyperparameters,
    trials: int,
    out_of_time: Callable[[], bool],
) -> dict[str, SimpleListResult]:
    """Each simple list searched on ``objective`` from ``events`` (all before ``now``): ``trials`` per list,
    the current settings first; no trial starts once ``out_of_time()`` (the first always runs)."""
    results: dict[str, SimpleListResult] = {}
    for name in SIMPLE_LISTS:
        default = current_settings(name, hp)
        default_score = objective.ndcg(events.scores(now, default))
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=hp.seed, n_startup_trials=max(2, min(10, trials // 3))),
        )
        study.enqueue_trial(_params(name, default))
        best, best_score, done = default, default_score, 0
        for _ in range(max(trials, 1)):
            if done and out_of_time():
                break
            trial = study.ask()
            suggested = _suggest(name, trial)  # the first trial is the enqueued current settings
            settings = default if done == 0 else suggested
            value = default_score if done == 0 else objective.ndcg(events.scores(now, settings))
            study.tell(trial, value)
            done += 1
            if value > best_score:
                best, best_score = settings, value
        results[name] = SimpleListResult(name, best, best_score, default_score, done)
        logger.info("simple list %s: %s", name, results[name].summary())
    return results
