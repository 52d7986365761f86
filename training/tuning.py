"""Validation tuning: the knobs that matter, chosen per shop on the validation window, then refitted.

Protocol (the evaluation's, one window earlier): retrieval learns from ``train`` (every event before the
validation window); the validation window's shoppers are split (seeded) into a part that teaches each
trial's LambdaRank ranker (its own early-stopping holdout inside) and ``OBJECTIVE_SHARE`` of them whose
served page is the objective: NDCG@10 of the page ``merchandiser.reranking`` builds (the one serving
builds, as ``training.evaluation`` scores it), relevant items being what they touched in the window minus
what they had bought. The test window is never read here.

Stages, each searched by Optuna's TPE (fixed seed), each starting from the current values (its first
trial), so the chosen values never score below the defaults on validation:

1. ``retrieval``: event-type weights (the types the window holds), recency half-life, ALS factors,
   regularisation and confidence (alpha), the co-occurrence window; each trial refits retrieval, so it
   gets the fewest trials;
2. ``ranker``: the source shares of the candidate merge and the ranker's leaves, rounds and learning
   rate, on the best retrieval fit (the users' states are kept: no refit, no fold-in);
3. ``page``: the category cap and the discovery share, on the best ranker's cached scores (no ranking).

Before them the simple lists (``training.simple_lists``: recent popularity and trending) are tuned on the
same shoppers; their settings feed the ``recent_popularity`` and ``trending`` sources. After them, if the
pipeline's page loses to the best list, the blends of that list into the ranker's order (and the list
alone) are tried on the same shoppers, and the best is what the model serves (``fallback_to_anchor``).

Budget (``--tuning-trials``, ``--tuning-seconds``; either 0 turns tuning off): the trials are shared by the
stages as ``STAGE_TRIAL_SHARES`` (each simple list gets a quarter of them, at least 4); the CPU seconds of
the job's process (a dedicated training instance's wall time; on a shared machine the same search
whatever the load) are shared as ``STAGE_TIME_SHARES``, a stage getting its share of the budget or, if the
stages before it left time, its share of what is left, whichever is more. A trial starts only if the
stage's trials so far, on average, say it ends within the stage's time; every stage runs its first trial
(a later stage's first trial is the best of the stage before: already scored, it costs nothing).
``--tuning-seconds -1`` (the default) scales the budget with the data: ``SECONDS_BASE`` +
``SECONDS_PER_100K`` per 100,000 events of the training window, at most ``SECONDS_CAP``. When the
trials bind (small shops) two runs give the same values; when time binds the search depends on the
machine's speed, and ``stopped_by`` says so.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from merchandiser.catalog import Catalog, ItemModel, id_hashes
from merchandiser.ranking import score
from merchandiser.reranking import ANCHOR_SIGNALS, FALLBACK, blend
from merchandiser.retrieval import RECENT_POPULARITY, SOURCE_SHARES, TRENDING, Candidates, candidates
from merchandiser.settings import RetailerRules
from merchandiser.shopper import UserState
from training.evaluation import page_list
from training.fit import (
    EventArrays,
    Hyperparameters,
    UserHistory,
    fit_ranker,
    fit_retrieval,
    ranker_examples,
    relevant_items,
    sample_users,
    split_holdout,
    user_state_at,
)
from training.metrics import ndcg_at_k
from training.simple_lists import ListObjective, SimpleListResult, tune_simple_lists, with_settings

logger = logging.getLogger(__name__)

STAGES = ("retrieval", "ranker", "page")
STAGE_TRIAL_SHARES = {"retrieval": 0.25, "ranker": 0.4, "page": 0.35}
STAGE_TIME_SHARES = {"retrieval": 0.45, "ranker": 0.3, "page": 0.25}
SECONDS_BASE, SECONDS_PER_100K, SECONDS_CAP = 10.0, 30.0, 600.0
BUDGET_RULE = (
    f"{SECONDS_BASE:.0f} s + {SECONDS_PER_100K:.0f} s per 100,000 events of the training window, at most"
    f" {SECONDS_CAP:.0f} s of CPU"
)
OBJECTIVE_SHARE = 0.4  # of the validation shoppers: the objective; the rest teach each trial's ranker
K = 10
PRESENT_SHARE = 0.005  # an event type's weight is tuned when this share of the window's events has it
WEIGHT_FIELDS = {
    "view": "view_weight",
    "click": "click_weight",
    "favourite": "favourite_weight",
    "add_to_cart": "cart_weight",
}  # a purchase keeps its weight: the scale the others are relative to
BLEND_WEIGHTS = (0.25, 0.5, 0.75)
LIST_ALONE_RULES = {"category_share": 1.0, "discovery_share": 0.0, "explore_share": 0.0}
MIN_FALLBACK_SHARE = 0.05  # of the candidates for the fallback list's source: its top of the page fits
LIST_SOURCES = {"pop_recent": RECENT_POPULARITY, "trending": TRENDING}


def auto_seconds(n_events: int) -> float:
    return min(SECONDS_CAP, SECONDS_BASE + SECONDS_PER_100K * n_events / 100_000)


@dataclass(frozen=True)
class Budget:
    trials: int  # the pipeline's, over its three stages
    seconds: float  # CPU seconds of the whole search
    scaled: bool  # seconds from ``auto_seconds``

    def stage_trials(self, stage: str) -> int:
        return max(1, round(self.trials * STAGE_TRIAL_SHARES[stage]))

    def list_trials(self) -> int:
        return max(4, self.trials // 4)


def budget_of(hp: Hyperparameters, n_events: int) -> Budget | None:
    """The search's budget for a training window of ``n_events``; None when tuning is off."""
    if hp.tuning_trials <= 0 or hp.tuning_seconds == 0:
        return None
    scaled = hp.tuning_seconds < 0
    seconds = auto_seconds(n_events) if scaled else hp.tuning_seconds
    return Budget(hp.tuning_trials, seconds, scaled)


@dataclass(frozen=True)
class ServingChoices:
    """What the model serves with beyond its artifacts, written to its manifest and read by serving."""

    source_shares: dict[str, float] = field(default_factory=lambda: dict(SOURCE_SHARES))
    page_rules: dict[str, float] = field(default_factory=dict)  # over RetailerRules' defaults
    fallback: dict[str, Any] = field(default_factory=lambda: {"engaged": False})

    def manifest(self) -> dict[str, Any]:
        return {"source_shares": self.source_shares, "page_rules": self.page_rules, FALLBACK: self.fallback}

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


@dataclass
class _Page:
    """One objective shopper's candidates and ranker scores, kept for the page stage."""

    user: str
    state: UserState
    candidates: Candidates
    scores: np.ndarray


@dataclass
class _Pages:
    """Every objective shopper's ``_Page`` under one retrieval model."""

    model: ItemModel
    pages: list[_Page]


def tune(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    catalog: Catalog,
    validation_start: float,
    hp: Hyperparameters,
    users: pd.DataFrame | None,
    segments: dict[str, tuple[str, ...]],
    budget: Budget,
    clock: Callable[[], float] = time.process_time,
) -> Tuned:
    """Every stage's search on the validation window; the chosen values and the search's record."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = _Search(train, validation, catalog, validation_start, hp, users, segments, budget, clock)
    return search.run()


class _Search:
    def __init__(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        catalog: Catalog,
        now: float,
        hp: Hyperparameters,
        users: pd.DataFrame | None,
        segments: dict[str, tuple[str, ...]],
        budget: Budget,
        clock: Callable[[], float],
    ) -> None:
        self.train, self.catalog, self.now, self.hp = train, catalog, now, hp
        self.users, self.segments, self.budget, self.clock = users, segments, budget, clock
        self.started = clock()
        self.wall_started = time.perf_counter()
        self.trials: list[Trial] = []
        self.stopped: dict[str, str] = {}
        bought = train[train["event_type"] == "purchase"]
        purchased = {str(user): frozenset(rows) for user, rows in _rows_by_user(bought, catalog).items()}
        histories = {user: UserHistory(weights={}, purchased=rows) for user, rows in purchased.items()}
        relevant = relevant_items(validation, catalog, histories)
        limit = math.ceil(hp.tuning_users / OBJECTIVE_SHARE)
        sampled = sample_users(list(relevant), limit, hp.seed)
        fitting, objective = split_holdout(sampled, OBJECTIVE_SHARE, hp.seed + 1)
        self.fit_users = fitting[: hp.max_ranker_users]
        self.objective_users = objective[: hp.tuning_users]
        self.relevant = {user: relevant[user] for user in sampled}
        self.purchased = {user: purchased.get(user, frozenset()) for user in sampled}
        self.events = EventArrays.of(train, catalog)

    # -- the search -------------------------------------------------------------------------------------

    def run(self) -> Tuned:
        lists = self._simple_lists()
        hp = self.hp
        for name, result in lists.items():
            hp = with_settings(hp, name, result.settings)
        retrieval_hp, fit, pages, value = self._retrieval_stage(hp)
        model, histories, states = fit
        shares, ranker_hp, pages, value = self._ranker_stage(
            retrieval_hp, model, histories, states, pages, value
        )
        rules, value = self._page_stage(pages, value)
        choices = ServingChoices(source_shares=shares, page_rules=rules)
        fallback, choices = self._fallback(lists, value, choices, ranker_hp, model, histories, states)
        choices = replace(choices, fallback=fallback)
        chosen_hp = ranker_hp
        summary = self._summary(chosen_hp, choices, lists, fallback)
        logger.info(
            "tuning: %d trials in %.1f s CPU, validation ndcg@10 %.4f -> %.4f",
            len(self.trials),
            summary["seconds"],
            summary["default_ndcg@10"],
            summary["best_ndcg@10"],
        )
        return Tuned(chosen_hp, choices, summary, (model, histories))

    def _deadline(self, stage: str) -> float:
        """The stage's share of the budget, or its share of what the stages before it left."""
        now = self.clock()
        left = self.budget.seconds - (now - self.started)
        later = sum(STAGE_TIME_SHARES[name] for name in STAGES[STAGES.index(stage) :])
        share = STAGE_TIME_SHARES[stage]
        return now + max(share * self.budget.seconds, left * share / later)

    def _stage(
        self,
        stage: str,
        default: dict[str, Any],
        suggest: Callable[[optuna.Trial], dict[str, Any]],
        evaluate: Callable[[dict[str, Any]], float],
        default_value: float | None = None,
    ) -> tuple[dict[str, Any], float, str]:
        """Searches one stage; ``default_value``: the default's score when a stage before measured it."""
        trials = self.budget.stage_trials(stage)
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(
                seed=self.hp.seed, n_startup_trials=max(2, min(10, trials // 3))
            ),
        )
        study.enqueue_trial(default)
        best, best_value, stopped_by = dict(default), -math.inf, "trials"
        deadline, costs = self._deadline(stage), list[float]()
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

    # -- simple lists -----------------------------------------------------------------------------------

    def _simple_lists(self) -> dict[str, SimpleListResult]:
        tie = _event_tie_order(self.events, self.catalog)
        objective = ListObjective(self.objective_users, self.relevant, self.purchased, tie)
        deadline = self._deadline("retrieval")
        return tune_simple_lists(
            self.events.before(self.now),
            self.now,
            objective,
            self.hp,
            self.budget.list_trials(),
            lambda: self.clock() >= deadline,
        )

    # -- stage 1: retrieval ------------------------------------------------------------------------------

    def _retrieval_stage(self, hp: Hyperparameters) -> tuple[Hyperparameters, Any, _Pages, float]:
        present = _present_types(self.train)
        kept: dict[str, Any] = {}

        def suggest(trial: optuna.Trial) -> dict[str, Any]:
            params: dict[str, Any] = {}
            for event_type, name in WEIGHT_FIELDS.items():
                if event_type in present:
                    params[name] = _float(trial, name, getattr(hp, name), 0.05, 16.0)
            params["half_life_days"] = _float(trial, "half_life_days", hp.half_life_days, 2.0, 365.0)
            factors = sorted({16, 32, 64, 128, hp.factors})
            params["factors"] = int(trial.suggest_categorical("factors", factors))
            params["regularization"] = _float(trial, "regularization", hp.regularization, 0.002, 2.0)
            params["alpha"] = _float(trial, "alpha", hp.alpha, 0.05, 40.0)
            low, high = min(10, hp.cooccurrence_items), max(500, hp.cooccurrence_items)
            params["cooccurrence_items"] = trial.suggest_int("cooccurrence_items", low, high, log=True)
            return params

        default = {name: getattr(hp, name) for name in WEIGHT_FIELDS.values() if _type_of(name) in present}
        default.update(
            half_life_days=hp.half_life_days,
            factors=hp.factors,
            regularization=hp.regularization,
            alpha=hp.alpha,
            cooccurrence_items=hp.cooccurrence_items,
        )
        best_value = -math.inf

        def evaluate(params: dict[str, Any]) -> float:
            nonlocal best_value
            trial_hp = replace(hp, **params)
            model, histories = fit_retrieval(self.train, self.catalog, self.now, trial_hp, self.users)
            ServingChoices().apply(model)
            states = self._states(model, histories)
            ranker = self._ranker(model, histories, states, trial_hp)
            value, pages = self._pages(model, states, ranker)
            if value > best_value:
                best_value = value
                kept.update(fit=(model, histories, states), pages=pages)
            return value

        best, value, stopped_by = self._stage("retrieval", default, suggest, evaluate)
        self._note("retrieval", stopped_by)
        return replace(hp, **best), kept["fit"], kept["pages"], value

    # -- stage 2: source shares and the ranker ------------------------------------------------------------

    def _ranker_stage(
        self,
        hp: Hyperparameters,
        model: ItemModel,
        histories: dict[str, UserHistory],
        states: dict[str, UserState],
        pages: _Pages,
        value: float,
    ) -> tuple[dict[str, float], Hyperparameters, _Pages, float]:
        kept: dict[str, Any] = {"pages": pages}

        def suggest(trial: optuna.Trial) -> dict[str, Any]:
            params: dict[str, Any] = {
                f"share_{name}": trial.suggest_float(f"share_{name}", 0.01, 1.0, log=True)
                for name in SOURCE_SHARES
            }
            params["ranker_leaves"] = trial.suggest_int(
                "ranker_leaves", min(7, hp.ranker_leaves), max(127, hp.ranker_leaves), log=True
            )
            params["ranker_rounds"] = trial.suggest_int(
                "ranker_rounds", min(50, hp.ranker_rounds), max(600, hp.ranker_rounds), log=True
            )
            params["ranker_learning_rate"] = _float(
                trial, "ranker_learning_rate", hp.ranker_learning_rate, 0.01, 0.3
            )
            return params

        default: dict[str, Any] = {f"share_{name}": share for name, share in SOURCE_SHARES.items()}
        default.update(
            ranker_leaves=hp.ranker_leaves,
            ranker_rounds=hp.ranker_rounds,
            ranker_learning_rate=hp.ranker_learning_rate,
        )
        best_value = value

        def evaluate(params: dict[str, Any]) -> float:
            nonlocal best_value
            model.manifest["source_shares"] = _shares(params)
            trial_hp = replace(hp, **{k: v for k, v in params.items() if k.startswith("ranker_")})
            ranker = self._ranker(model, histories, states, trial_hp)
            trial_value, trial_pages = self._pages(model, states, ranker)
            if trial_value > best_value:
                best_value = trial_value
                kept["pages"] = trial_pages
            return trial_value

        best, value, stopped_by = self._stage("ranker", default, suggest, evaluate, default_value=value)
        self._note("ranker", stopped_by)
        model.manifest["source_shares"] = _shares(best)
        ranker_hp = replace(hp, **{k: v for k, v in best.items() if k.startswith("ranker_")})
        return _shares(best), ranker_hp, kept["pages"], value

    # -- stage 3: the page's rules ------------------------------------------------------------------------

    def _page_stage(self, pages: _Pages, value: float) -> tuple[dict[str, float], float]:
        defaults = RetailerRules()
        default = {"category_share": defaults.category_share, "discovery_share": defaults.discovery_share}

        def suggest(trial: optuna.Trial) -> dict[str, Any]:
            return {
                "category_share": trial.suggest_float("category_share", 0.1, 1.0),
                "discovery_share": trial.suggest_float("discovery_share", 0.0, 0.3),
            }

        def evaluate(params: dict[str, Any]) -> float:
            return self._page_value(pages, RetailerRules.model_validate(params))

        best, value, stopped_by = self._stage("page", default, suggest, evaluate, default_value=value)
        self._note("page", stopped_by)
        return {name: round(float(share), 4) for name, share in best.items()}, value

    # -- never worse than the best simple list ------------------------------------------------------------

    def _fallback(
        self,
        lists: Mapping[str, SimpleListResult],
        pipeline: float,
        choices: ServingChoices,
        hp: Hyperparameters,
        model: ItemModel,
        histories: dict[str, UserHistory],
        states: dict[str, UserState],
    ) -> tuple[dict[str, Any], ServingChoices]:
        best_name = max(lists, key=lambda name: lists[name].validation_ndcg)
        best_list = lists[best_name].validation_ndcg
        record: dict[str, Any] = {
            "engaged": False,
            "validation": {
                "pipeline": round(pipeline, 6),
                **{name: round(result.validation_ndcg, 6) for name, result in lists.items()},
            },
            "best_list": best_name,
        }
        if pipeline >= best_list:
            record["reason"] = (
                f"the pipeline's page ({pipeline:.4f}) is not below {best_name} ({best_list:.4f})"
            )
            return record, choices
        # the list's source must propose the top of the page: at least MIN_FALLBACK_SHARE of the candidates
        shares = _with_share(choices.source_shares, LIST_SOURCES[best_name], MIN_FALLBACK_SHARE)
        model.manifest["source_shares"] = shares
        ranker = self._ranker(model, histories, states, hp)
        _, pages = self._pages(model, states, ranker)
        rules = RetailerRules.model_validate(choices.page_rules)
        options: dict[str, float] = {}
        for weight in BLEND_WEIGHTS:
            options[f"blend {weight}"] = self._page_value(pages, rules, best_name, weight)
        alone = RetailerRules.model_validate(LIST_ALONE_RULES)
        options["list alone"] = self._page_value(pages, alone, best_name, 1.0)
        record["validation"]["options"] = {name: round(value, 6) for name, value in options.items()}
        chosen = max(options, key=lambda name: options[name])
        if options[chosen] <= pipeline:
            record["reason"] = (
                f"the pipeline's page ({pipeline:.4f}) is below {best_name} ({best_list:.4f}), but no blend"
                f" of it does better on the page ({options[chosen]:.4f})"
            )
            return record, choices
        weight = 1.0 if chosen == "list alone" else float(chosen.split()[1])
        record.update(
            engaged=True,
            anchor=best_name,
            signal=ANCHOR_SIGNALS[best_name],
            weight=weight,
            surfaces=["home", "category"],
            reason=(
                f"the pipeline's page ({pipeline:.4f}) is below {best_name} ({best_list:.4f}) on validation;"
                f" the page serves {chosen} ({options[chosen]:.4f})"
            ),
        )
        page_rules = dict(LIST_ALONE_RULES) if chosen == "list alone" else choices.page_rules
        return record, replace(choices, source_shares=shares, page_rules=page_rules)

    # -- one trial's parts ----------------------------------------------------------------------------------

    def _states(self, model: ItemModel, histories: dict[str, UserHistory]) -> dict[str, UserState]:
        return {
            user: user_state_at(model, histories, user, self.segments)
            for user in [*self.fit_users, *self.objective_users]
        }

    def _ranker(
        self,
        model: ItemModel,
        histories: dict[str, UserHistory],
        states: dict[str, UserState],
        hp: Hyperparameters,
    ) -> lgb.Booster | None:
        fitting, holdout = split_holdout(self.fit_users, hp.ranker_holdout, hp.seed)
        k = hp.ranker_candidates
        fit_part = ranker_examples(
            model, histories, self.relevant, fitting, self.now, k, self.segments, states
        )
        stop_part = ranker_examples(
            model, histories, self.relevant, holdout, self.now, k, self.segments, states
        )
        booster, _ = fit_ranker(fit_part, stop_part, hp)
        return booster

    def _pages(
        self, model: ItemModel, states: dict[str, UserState], ranker: lgb.Booster | None
    ) -> tuple[float, _Pages]:
        """The objective shoppers' candidates (the model's shares) and ranker scores; the page's NDCG@10
        under the default rules."""
        pages = []
        for user in self.objective_users:
            state = states[user]
            found = candidates(model, state, self.hp.candidates)
            pages.append(_Page(user, state, found, score(ranker, model, state, found, self.now)))
        scored = _Pages(model, pages)
        return self._page_value(scored, RetailerRules()), scored

    def _page_value(
        self, scored: _Pages, rules: RetailerRules, anchor: str | None = None, weight: float = 0.0
    ) -> float:
        """Mean NDCG@10 of the served page (``rules``; blended with the ``anchor`` list when given)."""
        if not scored.pages:
            return 0.0
        model, total = scored.model, 0.0
        for page in scored.pages:
            scores = page.scores
            if anchor is not None:
                scores = blend(model, page.candidates, scores, anchor, weight)
            shown = page_list(
                model, page.candidates, scores, page.state.purchased, page.user, self.now, rules
            )
            total += ndcg_at_k(shown, self.relevant[page.user], K)
        return total / len(scored.pages)

    # -- the record ------------------------------------------------------------------------------------

    def _note(self, stage: str, stopped_by: str) -> None:
        self.stopped[stage] = stopped_by

    def _summary(
        self,
        hp: Hyperparameters,
        choices: ServingChoices,
        lists: Mapping[str, SimpleListResult],
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
                "retrieval fitted on the events before the validation window; each trial's ranker learns"
                f" from {len(self.fit_users)} validation shoppers, the page is scored for"
                f" {len(self.objective_users)} others"
            ),
            "users": {"ranker": len(self.fit_users), "objective": len(self.objective_users)},
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


# -- helpers ------------------------------------------------------------------------------------------------


def _startup(trials: int) -> int:
    """TPE's random trials before it models: a third of a small budget, at most Optuna's default 10."""
    return max(2, min(10, trials // 3))


def _float(trial: optuna.Trial, name: str, current: float, low: float, high: float) -> float:
    """A log-scale float whose range always holds the current value (the stage's first trial)."""
    return float(trial.suggest_float(name, min(low, current), max(high, current), log=True))


def _int(trial: optuna.Trial, name: str, current: int, low: int, high: int) -> int:
    return int(trial.suggest_int(name, min(low, current), max(high, current), log=True))


def _type_of(field_name: str) -> str:
    return next(event_type for event_type, name in WEIGHT_FIELDS.items() if name == field_name)


def _present_types(events: pd.DataFrame) -> set[str]:
    shares = events["event_type"].value_counts(normalize=True)
    return {str(event_type) for event_type, share in shares.items() if share >= PRESENT_SHARE}


def _shares(params: Mapping[str, Any]) -> dict[str, float]:
    raw = {name: float(params[f"share_{name}"]) for name in SOURCE_SHARES}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def _with_share(shares: Mapping[str, float], source: str, minimum: float) -> dict[str, float]:
    """``shares`` with ``source`` at ``minimum`` at least, the others scaled to keep the sum at 1."""
    if shares.get(source, 0.0) >= minimum:
        return dict(shares)
    others = sum(value for name, value in shares.items() if name != source)
    scale = (1.0 - minimum) / others if others > 0 else 0.0
    return {name: (minimum if name == source else value * scale) for name, value in shares.items()}


def _rows_by_user(events: pd.DataFrame, catalog: Catalog) -> dict[str, set[int]]:
    rows = pd.Index(catalog.item_ids).get_indexer(events["item_id"].astype(str))
    known = rows >= 0
    result: dict[str, set[int]] = {}
    for user, row in zip(
        events["user_id"].astype(str).to_numpy()[known].tolist(), rows[known].tolist(), strict=True
    ):
        result.setdefault(user, set()).add(int(row))
    return result


def _event_tie_order(events: EventArrays, catalog: Catalog) -> np.ndarray:
    """The simple lists' tie order: the latest interaction first, then the newest item (as ``tie_rank``
    after recent popularity, which the lists themselves are)."""

    def descending(values: np.ndarray) -> np.ndarray:
        return -np.where(np.isnan(values), -np.inf, values)

    order = np.lexsort(
        (
            id_hashes(catalog.item_ids),
            descending(catalog.created_at.astype(np.float64)),
            descending(events.last_seen()),
        )
    )
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks
