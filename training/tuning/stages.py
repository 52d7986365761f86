"""The search, stage by stage: the simple lists, then retrieval, the ranker and shares, the page's rules,
the fallback to a simple list (``training.tuning.fallback``) and the long-tail correction's strength
(``training.tuning.long_tail``); ``tune`` runs them in that order."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import optuna
import pandas as pd

from merchandiser.catalog import Catalog, id_hashes
from merchandiser.retrieval import SOURCE_SHARES
from merchandiser.settings import RetailerRules
from training.events import EventArrays
from training.fit import Hyperparameters
from training.simple_lists import ListObjective, SimpleListResult, tune_simple_lists, with_settings
from training.tuning.budget import Budget
from training.tuning.choices import ServingChoices, Tuned
from training.tuning.fallback import fallback
from training.tuning.long_tail import long_tail
from training.tuning.search import Fit, Pages, Search

logger = logging.getLogger(__name__)

PRESENT_SHARE = 0.005  # an event type's weight is tuned when this share of the window's events has it
WEIGHT_FIELDS = {
    "view": "view_weight",
    "click": "click_weight",
    "favourite": "favourite_weight",
    "add_to_cart": "cart_weight",
}  # a purchase keeps its weight: the scale the others are relative to
# the sources whose shares the ranker stage searches: those with a place by default (the served anchor's
# source has none until the fallback gives it one)
TUNED_SHARES = {name: share for name, share in SOURCE_SHARES.items() if share > 0}


def tune(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    catalog: Catalog,
    validation_start: float,
    ranker_start: float,
    hp: Hyperparameters,
    users: pd.DataFrame | None,
    segments: dict[str, tuple[str, ...]],
    budget: Budget,
    clock: Callable[[], float] = time.process_time,
    personal_anchors: Mapping[str, dict[str, Any]] | None = None,
) -> Tuned | None:
    """Every stage's search on the validation window (epoch s from ``validation_start``), the ranker
    learning from ``[ranker_start, validation_start)``; the chosen values and the search's record. None
    when the training window holds no shopper with events both before and in the ranker's window.
    ``personal_anchors``: the tuned settings of the item-item anchors the fallback may serve."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = Search(
        train, validation, catalog, validation_start, ranker_start, hp, users, segments, budget, clock
    )
    if not search.ranker_users or not search.objective_users:
        logger.warning(
            "tuning skipped: %d shoppers for the ranker, %d for the objective",
            len(search.ranker_users),
            len(search.objective_users),
        )
        return None
    return run(search, personal_anchors)


def run(search: Search, personal_anchors: Mapping[str, dict[str, Any]] | None = None) -> Tuned:
    retrieval_deadline = search.deadline("retrieval")
    lists = simple_lists(search, retrieval_deadline)
    hp = search.hp
    for name, result in lists.items():
        hp = with_settings(hp, name, result.settings)
    retrieval_hp, fit, pages, value = retrieval_stage(search, hp, retrieval_deadline)
    shares, ranker_hp, pages, value = ranker_stage(search, retrieval_hp, fit, pages, value)
    rules, value = page_stage(search, pages, value)
    choices = ServingChoices(source_shares=shares, page_rules=rules)
    record, choices, pages = fallback(search, lists, value, choices, ranker_hp, fit, pages, personal_anchors)
    choices = replace(choices, fallback=record)
    started = search.clock()
    choices = replace(choices, long_tail=long_tail(search, pages, choices))
    logger.info(
        "tuning: long-tail strength %s (%.1f s CPU): %s",
        choices.long_tail["strength"],
        search.clock() - started,
        choices.long_tail["reason"],
    )
    summary = search.summary(ranker_hp, choices, lists, record)
    logger.info(
        "tuning: %d trials in %.1f s CPU, validation ndcg@10 %.4f -> %.4f",
        len(search.trials),
        summary["seconds"],
        summary["default_ndcg@10"],
        summary["best_ndcg@10"],
    )
    return Tuned(ranker_hp, choices, summary, (fit.late, fit.late_histories))


def simple_lists(search: Search, deadline: float) -> dict[str, SimpleListResult]:
    tie = _event_tie_order(search.events, search.catalog)
    objective = ListObjective(search.objective_users, search.relevant, search.purchased, tie)
    return tune_simple_lists(
        search.events.before(search.now),
        search.now,
        objective,
        search.hp,
        search.budget.list_trials(),
        lambda: search.clock() >= deadline,
    )


# -- stage 1: retrieval ------------------------------------------------------------------------------


def retrieval_stage(
    search: Search, hp: Hyperparameters, deadline: float
) -> tuple[Hyperparameters, Fit, Pages, float]:
    present = _present_types(search.train)
    kept: dict[str, Any] = {}

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for event_type, name in WEIGHT_FIELDS.items():
            if event_type in present:
                params[name] = _float(trial, name, getattr(hp, name), 0.05, 16.0)
        params["half_life_days"] = _float(trial, "half_life_days", hp.half_life_days, 2.0, 365.0)
        # at most the job's own size: more factors cost ALS several times the trial the stage's time was
        # planned on (128 took four times 64's CPU on Online Retail)
        factors = sorted({f for f in (16, 32, 64) if f <= hp.factors} | {hp.factors})
        params["factors"] = int(trial.suggest_categorical("factors", factors))
        params["regularization"] = _float(trial, "regularization", hp.regularization, 0.002, 2.0)
        params["alpha"] = _float(trial, "alpha", hp.alpha, 0.05, 40.0)
        params["cooccurrence_items"] = _int(trial, "cooccurrence_items", hp.cooccurrence_items, 10, 500)
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
        fit = search.fit(trial_hp)
        value, pages = search.pages(fit, search.ranker(fit, trial_hp))
        if value > best_value:
            best_value = value
            kept.update(fit=fit, pages=pages)
        return value

    best, value, stopped_by = search.stage("retrieval", default, suggest, evaluate, deadline=deadline)
    search.note("retrieval", stopped_by)
    return replace(hp, **best), kept["fit"], kept["pages"], value


# -- stage 2: source shares and the ranker ------------------------------------------------------------


def ranker_stage(
    search: Search, hp: Hyperparameters, fit: Fit, pages: Pages, value: float
) -> tuple[dict[str, float], Hyperparameters, Pages, float]:
    kept: dict[str, Any] = {"pages": pages}

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {
            f"share_{name}": trial.suggest_float(f"share_{name}", 0.01, 1.0, log=True)
            for name in TUNED_SHARES
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

    default: dict[str, Any] = {f"share_{name}": share for name, share in TUNED_SHARES.items()}
    default.update(
        ranker_leaves=hp.ranker_leaves,
        ranker_rounds=hp.ranker_rounds,
        ranker_learning_rate=hp.ranker_learning_rate,
    )
    best_value = value

    def evaluate(params: dict[str, Any]) -> float:
        nonlocal best_value
        fit.share(_shares(params))
        trial_hp = replace(hp, **{k: v for k, v in params.items() if k.startswith("ranker_")})
        trial_value, trial_pages = search.pages(fit, search.ranker(fit, trial_hp))
        if trial_value > best_value:
            best_value = trial_value
            kept["pages"] = trial_pages
        return trial_value

    best, value, stopped_by = search.stage("ranker", default, suggest, evaluate, default_value=value)
    search.note("ranker", stopped_by)
    fit.share(_shares(best))
    ranker_hp = replace(hp, **{k: v for k, v in best.items() if k.startswith("ranker_")})
    return _shares(best), ranker_hp, kept["pages"], value


# -- stage 3: the page's rules ------------------------------------------------------------------------


def page_stage(search: Search, pages: Pages, value: float) -> tuple[dict[str, float], float]:
    """The category cap and discovery share, in steps of 0.05: a 20-item page changes only by whole
    slots, so finer values would only repeat pages (a repeated value is scored once)."""
    defaults = RetailerRules()
    default = {"category_share": defaults.category_share, "discovery_share": defaults.discovery_share}
    scored: dict[tuple[float, float], float] = {}

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        return {
            "category_share": trial.suggest_float("category_share", 0.1, 1.0, step=0.05),
            "discovery_share": trial.suggest_float("discovery_share", 0.0, 0.3, step=0.05),
        }

    def evaluate(params: dict[str, Any]) -> float:
        key = (round(params["category_share"], 4), round(params["discovery_share"], 4))
        if key not in scored:
            scored[key] = search.page_value(pages, RetailerRules.model_validate(params))
        return scored[key]

    best, value, stopped_by = search.stage("page", default, suggest, evaluate, default_value=value)
    search.note("page", stopped_by)
    return {name: round(float(share), 4) for name, share in best.items()}, value


# -- helpers ----------------------------------------------------------------------------------------------


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
    raw = {name: float(params[f"share_{name}"]) for name in TUNED_SHARES}
    total = sum(raw.values())
    # every registered source, those not searched with no places of their own
    return {name: raw[name] / total if name in raw else 0.0 for name in SOURCE_SHARES}


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
