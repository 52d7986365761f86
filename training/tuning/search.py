"""The search's machinery shared by its stages: the shoppers it learns and scores on, one trial's fits,
ranker and pages, the stage loop (Optuna's TPE within the stage's trials and time) and the record."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from merchandiser.catalog import Catalog, ItemModel
from merchandiser.ranking import score
from merchandiser.reranking import blend, long_tail_scores
from merchandiser.retrieval import Candidates, candidates
from merchandiser.settings import RetailerRules
from merchandiser.shopper import UserState
from training.evaluation import PAGE, page_list
from training.events import EventArrays, epoch_seconds
from training.fit import Hyperparameters, UserHistory, fit_retrieval, relevant_items, sample_users
from training.metrics import coverage_at_k, long_tail_items, long_tail_share, ndcg_at_k
from training.ranker import fit_ranker, ranker_examples, split_holdout, user_state_at
from training.tuning.budget import BUDGET_RULE, STAGE_TIME_SHARES, STAGES, Budget
from training.tuning.choices import ServingChoices, Trial

logger = logging.getLogger(__name__)

K = 10


@dataclass
class Page:
    """One objective shopper's candidates and ranker scores, kept for the page stage."""

    user: str
    state: UserState
    candidates: Candidates
    scores: np.ndarray


@dataclass
class Pages:
    """Every objective shopper's ``Page`` under one retrieval model."""

    model: ItemModel
    pages: list[Page]


@dataclass
class Fit:
    """One trial's retrieval: fitted before the ranker's window (``early``: its examples) and before the
    validation window (``late``: the pages scored), with the shoppers' states under each."""

    early: ItemModel
    early_histories: dict[str, UserHistory]
    early_states: dict[str, UserState]
    late: ItemModel
    late_histories: dict[str, UserHistory]
    late_states: dict[str, UserState]

    def share(self, shares: dict[str, float]) -> None:
        """Both models merge candidates with ``shares`` from now on."""
        for model in (self.early, self.late):
            model.manifest["source_shares"] = shares


class Search:
    """The shoppers, windows, budget and record of one search; the stages (``training.tuning.stages``) run
    their trials through ``stage`` and score them with ``fit``, ``ranker``, ``pages`` and ``page_value``."""

    def __init__(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        catalog: Catalog,
        now: float,
        ranker_start: float,
        hp: Hyperparameters,
        users: pd.DataFrame | None,
        segments: dict[str, tuple[str, ...]],
        budget: Budget,
        clock: Callable[[], float],
    ) -> None:
        self.train, self.catalog, self.now, self.ranker_start, self.hp = train, catalog, now, ranker_start, hp
        self.users, self.segments, self.budget, self.clock = users, segments, budget, clock
        self.started = clock()
        self.wall_started = time.perf_counter()
        self.trials: list[Trial] = []
        self.stopped: dict[str, str] = {}
        seconds = epoch_seconds(train["timestamp"])
        self.early = train[seconds < ranker_start]
        ranker_window = train[seconds >= ranker_start]
        # labels: what each shopper touched in a window minus what they had bought before it
        ranker_relevant = relevant_items(ranker_window, catalog, _purchase_histories(self.early, catalog))
        purchased = _purchased(train, catalog)
        relevant = relevant_items(validation, catalog, _purchase_histories(train, catalog))
        self.ranker_users = sample_users(
            list(ranker_relevant), min(hp.tuning_users, hp.max_ranker_users), hp.seed
        )
        self.objective_users = sample_users(list(relevant), hp.tuning_users, hp.seed)
        self.ranker_relevant = {user: ranker_relevant[user] for user in self.ranker_users}
        self.relevant = {user: relevant[user] for user in self.objective_users}
        self.purchased = {user: purchased.get(user, frozenset()) for user in self.objective_users}
        self.events = EventArrays.of(train, catalog)

    def deadline(self, stage: str) -> float:
        """The stage's share of the budget, or its share of what the stages before it left."""
        now = self.clock()
        left = self.budget.seconds - (now - self.started)
        later = sum(STAGE_TIME_SHARES[name] for name in STAGES[STAGES.index(stage) :])
        share = STAGE_TIME_SHARES[stage]
        return now + max(share * self.budget.seconds, left * share / later)

    def stage(
        self,
        stage: str,
        default: dict[str, Any],
        suggest: Callable[[optuna.Trial], dict[str, Any]],
        evaluate: Callable[[dict[str, Any]], float],
        default_value: float | None = None,
        deadline: float | None = None,
    ) -> tuple[dict[str, Any], float, str]:
        """Searches one stage; ``default_value``: the default's score when a stage before measured it;
        ``deadline``: when the stage's time ends, if not from now."""
        trials = self.budget.stage_trials(stage)
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=self.hp.seed, n_startup_trials=startup_trials(trials)),
        )
        study.enqueue_trial(default)
        best, best_value, stopped_by = dict(default), -math.inf, "trials"
        deadline, costs = deadline if deadline is not None else self.deadline(stage), list[float]()
        for done in range(trials):
            expected = sum(costs) / len(costs) if costs else 0.0
            if done and self.clock() + expected > deadline:
                stopped_by = "time"
                break
            trial = study.ask()
            params = suggest(trial)
            started = self.clock()
            value = default_value if done == 0 and default_value is not None else evaluate(params)
            study.tell(trial, value)
            seconds = self.clock() - started
            if not (done == 0 and default_value is not None):
                costs.append(seconds)
            self.trials.append(Trial(stage, len(self.trials), value, params, seconds))
            if value > best_value:
                best, best_value = params, value
        return best, best_value, stopped_by

    # -- one trial's parts -------------------------------------------------------------------------------

    def fit(self, hp: Hyperparameters) -> Fit:
        early, early_histories = fit_retrieval(self.early, self.catalog, self.ranker_start, hp, self.users)
        late, late_histories = fit_retrieval(self.train, self.catalog, self.now, hp, self.users)
        for model in (early, late):
            ServingChoices().apply(model)
        return Fit(
            early,
            early_histories,
            {user: user_state_at(early, early_histories, user, self.segments) for user in self.ranker_users},
            late,
            late_histories,
            {user: user_state_at(late, late_histories, user, self.segments) for user in self.objective_users},
        )

    def ranker(self, fit: Fit, hp: Hyperparameters) -> lgb.Booster | None:
        """The trial's ranker: examples from the early fit, labels from the ranker's window."""
        fitting, holdout = split_holdout(self.ranker_users, hp.ranker_holdout, hp.seed)
        parts = [
            ranker_examples(
                fit.early,
                fit.early_histories,
                self.ranker_relevant,
                part,
                self.ranker_start,
                hp.ranker_candidates,
                self.segments,
                fit.early_states,
            )
            for part in (fitting, holdout)
        ]
        booster, _ = fit_ranker(parts[0], parts[1], hp)
        return booster

    def pages(self, fit: Fit, ranker: lgb.Booster | None) -> tuple[float, Pages]:
        """The objective shoppers' candidates (the late fit, its shares) and ranker scores; the page's
        NDCG@10 under the default rules."""
        pages = []
        for user in self.objective_users:
            state = fit.late_states[user]
            found = candidates(fit.late, state, self.hp.candidates)
            pages.append(Page(user, state, found, score(ranker, fit.late, state, found, self.now)))
        scored = Pages(fit.late, pages)
        return self.page_value(scored, RetailerRules()), scored

    def page_value(
        self,
        scored: Pages,
        rules: RetailerRules,
        anchor: str | None = None,
        weight: float = 0.0,
        strength: float = 0.0,
    ) -> float:
        """Mean NDCG@10 of the served page (``rules``; blended with the ``anchor`` when given, as serving's
        ``anchor_blend`` blends the model's, then corrected for popularity with ``strength``)."""
        return self.page_metrics(scored, rules, anchor, weight, strength)["ndcg@10"]

    def page_metrics(
        self,
        scored: Pages,
        rules: RetailerRules,
        anchor: str | None = None,
        weight: float = 0.0,
        strength: float = 0.0,
    ) -> dict[str, float]:
        """The served pages' mean NDCG@10, coverage@20 (of the catalogue) and long-tail share of their
        top 20 (``training.metrics``, as the evaluation measures them), built as ``page_value`` says."""
        if not scored.pages:
            return {"ndcg@10": 0.0, "coverage@20": 0.0, "long_tail@20": 0.0}
        model, total, shown_pages = scored.model, 0.0, []
        for page in scored.pages:
            scores = page.scores
            if anchor is not None:
                scores = blend(model, page.candidates, scores, page.state, anchor, weight)
            scores = long_tail_scores(model, page.candidates, scores, strength)
            shown = page_list(
                model, page.candidates, scores, page.state.purchased, page.user, self.now, rules
            )
            total += ndcg_at_k(shown, self.relevant[page.user], K)
            shown_pages.append(shown)
        tail = long_tail_items(model.popularity)
        return {
            "ndcg@10": total / len(scored.pages),
            "coverage@20": coverage_at_k(shown_pages, len(model.catalog), PAGE),
            "long_tail@20": long_tail_share(shown_pages, tail, PAGE),
        }

    # -- the record ------------------------------------------------------------------------------------

    def note(self, stage: str, stopped_by: str) -> None:
        self.stopped[stage] = stopped_by

    def summary(
        self,
        hp: Hyperparameters,
        choices: ServingChoices,
        lists: Mapping[str, Any],
        fallback: dict[str, Any],
    ) -> dict[str, Any]:
        by_stage = {stage: [t for t in self.trials if t.stage == stage] for stage in STAGES}
        changed = {name: value for name, value in hp.as_dict().items() if value != getattr(self.hp, name)}
        default_value = by_stage["retrieval"][0].value if by_stage["retrieval"] else math.nan
        best_value = max((t.value for t in self.trials), default=math.nan)
        return {
            "enabled": True,
            "objective": "NDCG@10 of the served page on the validation window",
            "protocol": (
                "each trial fits retrieval before the ranker's window (the last part of the training"
                f" window, as long as the validation window), learns its ranker from {len(self.ranker_users)}"
                " shoppers of that window, refits retrieval on the training window and scores the page for"
                f" {len(self.objective_users)} shoppers of the validation window"
            ),
            "users": {"ranker": len(self.ranker_users), "objective": len(self.objective_users)},
            "budget": {
                "trials": self.budget.trials,
                "seconds": round(self.budget.seconds, 1),
                "seconds_rule": BUDGET_RULE if self.budget.scaled else "given (--tuning-seconds)",
                "clock": "CPU seconds of the training process",
            },
            "default_ndcg@10": round(default_value, 6),
            "best_ndcg@10": round(best_value, 6),
            "seconds": round(self.clock() - self.started, 3),
            "wall_seconds": round(time.perf_counter() - self.wall_started, 3),
            "stages": {
                stage: {
                    "trials": len(trials),
                    "budget_trials": self.budget.stage_trials(stage),
                    "stopped_by": self.stopped.get(stage, "trials"),
                    "default_ndcg@10": round(trials[0].value, 6) if trials else None,
                    "best_ndcg@10": round(max(t.value for t in trials), 6) if trials else None,
                    "seconds": round(sum(t.seconds for t in trials), 3),
                }
                for stage, trials in by_stage.items()
            },
            "chosen": {
                "hyperparameters": changed,
                "source_shares": {name: round(share, 4) for name, share in choices.source_shares.items()},
                "page_rules": choices.page_rules,
            },
            "simple_lists": {name: result.summary() for name, result in lists.items()},
            "trials": [trial.record() for trial in self.trials],
        }


# -- helpers ----------------------------------------------------------------------------------------------


def startup_trials(trials: int) -> int:
    """TPE's random trials before it models: a third of a small budget, at most Optuna's default 10."""
    return max(2, min(10, trials // 3))


def _purchased(events: pd.DataFrame, catalog: Catalog) -> dict[str, frozenset[int]]:
    bought = events[events["event_type"] == "purchase"]
    return {user: frozenset(rows) for user, rows in _rows_by_user(bought, catalog).items()}


def _purchase_histories(events: pd.DataFrame, catalog: Catalog) -> dict[str, UserHistory]:
    """Histories holding only purchases: all ``relevant_items`` reads of them."""
    return {
        user: UserHistory(weights={}, purchased=rows) for user, rows in _purchased(events, catalog).items()
    }


def _rows_by_user(events: pd.DataFrame, catalog: Catalog) -> dict[str, set[int]]:
    rows = pd.Index(catalog.item_ids).get_indexer(events["item_id"].astype(str))
    known = rows >= 0
    result: dict[str, set[int]] = {}
    for user, row in zip(
        events["user_id"].astype(str).to_numpy()[known].tolist(), rows[known].tolist(), strict=True
    ):
        result.setdefault(user, set()).add(int(row))
    return result
