"""Tuned anchors: each family's settings chosen on a validation window, then refitted and handed back.

The protocol is the evaluation's, one window earlier. Of the training window (every event before the
test start), the last part is held out as validation: the anchors learn from what precedes
``validation_start``, and are scored by NDCG@10 (``training.metrics.ndcg_at_k``) on the users active in
the validation window, relevant items being what they touched there minus what they had bought before,
on a deterministic sample of at most ``max_users`` of them. Optuna's TPE (fixed seed) searches each
family, its default being the first trial; the best settings are then refitted on the whole training
window, ready to be scored on the test window by the job's own metric code. The test window is never
read here.

Budget: ``trials`` per anchor (the default 20 binds on small shops, so two runs give the same
settings) and ``seconds`` per anchor, a guard that binds on large ones (no trial starts after it; the
time guard makes a search depend on the machine's speed, which ``stopped_by`` records). The guard counts
the training process's CPU seconds, as the pipeline's tuning does, not the wall clock: a machine busy with
other work gives the search the same trials as a quiet one (a wall-clock guard cut Online Retail's EASE
search short on a loaded machine and moved its chosen settings between runs). Unless set,
``anchor_settings`` gives the whole search ``30 s + 60 s per 100,000 events`` of the training window, at
most 15 minutes, shared equally by the anchors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

from merchandiser.catalog import Catalog
from training.anchors.ease import active_items
from training.anchors.families import ANCHOR_NAMES, EASE_FAMILIES, NEIGHBOUR_FAMILIES, Family, Params, family
from training.anchors.ranking import Recommender, tie_ranks
from training.anchors.window import Window, window_of
from training.fit import UserHistory, epoch_seconds, relevant_items, sample_users
from training.metrics import ndcg_at_k

logger = logging.getLogger(__name__)

VALIDATION_K = 10  # the objective is NDCG@10
SECONDS_BASE, SECONDS_PER_100K_EVENTS, SECONDS_CAP = 30.0, 60.0, 900.0  # the whole search


@dataclass(frozen=True)
class AnchorSettings:
    trials: int = 20  # per anchor, the default included
    seconds: float = 60.0  # per anchor, CPU seconds: no new trial starts after this
    ease_max_items: int = 6000  # EASE inverts an (items, items) matrix: skipped above this many active items
    # item-kNN and RP3beta hold X'X: skipped when it may have more non-zeros than this (about 24 bytes each)
    neighbour_max_pairs: int = 100_000_000
    max_users: int = 5000  # validation users scored per trial (a deterministic sample)
    seed: int = 7
    threads: int = 1  # BLAS threads (EASE's inverse, the scores): more spin and slow down on a busy machine
    names: tuple[str, ...] = ANCHOR_NAMES


def anchor_settings(n_events: int, trials: int, seconds: float, ease_max_items: int, max_users: int,
                    seed: int, threads: int = 1) -> AnchorSettings:  # fmt: skip
    """Settings for a training window of ``n_events``; ``seconds`` (per anchor) <= 0 means scaled with the
    data."""
    if seconds <= 0:
        total = min(SECONDS_CAP, SECONDS_BASE + SECONDS_PER_100K_EVENTS * n_events / 100_000)
        seconds = total / len(ANCHOR_NAMES)
    return AnchorSettings(
        trials=trials, seconds=seconds, ease_max_items=ease_max_items, max_users=max_users, seed=seed,
        threads=threads,
    )  # fmt: skip


@dataclass(frozen=True)
class AnchorResult:
    name: str
    params: Params
    validation_ndcg: float | None  # NDCG@10 of the chosen settings on the validation window
    default_validation_ndcg: float | None
    trials: int
    seconds: float
    stopped_by: str  # "trials", "time", or why there was no search
    recommender: Recommender | None = field(default=None, repr=False)  # refitted on the training window
    skipped: str | None = None  # why the anchor was not fitted at all

    def summary(self) -> dict[str, Any]:
        """What ``evaluation.json`` keeps of it."""
        if self.skipped is not None:
            return {"skipped": self.skipped}
        return {
            "params": self.params,
            "validation_ndcg@10": self.validation_ndcg,
            "default_validation_ndcg@10": self.default_validation_ndcg,
            "trials": self.trials,
            "seconds": round(self.seconds, 3),
            "stopped_by": self.stopped_by,
        }


@dataclass(frozen=True)
class _Validation:
    window: Window  # what precedes validation_start
    users: list[str]
    relevant: dict[str, set[int]]


def tuned_anchors(
    events: pd.DataFrame,
    catalog: Catalog,
    validation_start: float,
    train_end: float,
    settings: AnchorSettings,
) -> dict[str, AnchorResult]:
    """Every anchor of ``settings.names``, tuned on ``[validation_start, train_end)`` (epoch s) and refitted
    on everything before ``train_end``; ``events`` at or after ``train_end`` are ignored."""
    with threadpool_limits(settings.threads, "blas"):
        return _tuned_anchors(events, catalog, validation_start, train_end, settings)


def _tuned_anchors(
    events: pd.DataFrame,
    catalog: Catalog,
    validation_start: float,
    train_end: float,
    settings: AnchorSettings,
) -> dict[str, AnchorResult]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    seconds = epoch_seconds(events["timestamp"])
    validation = _validation(events, catalog, validation_start, train_end, seconds, settings)
    full = window_of(events, catalog, train_end)
    results: dict[str, AnchorResult] = {}
    ranks = {"validation": tie_ranks(None, validation.window.last_seen(), validation.window.created_at),
             "full": tie_ranks(None, full.last_seen(), full.created_at)}  # fmt: skip
    too_big = {
        **dict.fromkeys(EASE_FAMILIES, _ease_too_big(full, settings.ease_max_items)),
        **dict.fromkeys(NEIGHBOUR_FAMILIES, _gram_too_big(full, settings.neighbour_max_pairs)),
    }
    for name in settings.names:
        anchor = family(name)
        reason = too_big.get(name)
        if reason:
            logger.warning("anchor %s skipped: %s", name, reason)
            results[name] = AnchorResult(name, {}, None, None, 0, 0.0, "skipped", skipped=reason)
            continue
        if name == "ease_pop" and "ease" not in results:
            results["ease"] = _tune(family("ease"), validation, full, ranks, settings, {})
        fixed = {"lambda_scale": results["ease"].params["lambda_scale"],
                 "matrix": results["ease"].params["matrix"]} if name == "ease_pop" else {}  # fmt: skip
        results[name] = _tune(anchor, validation, full, ranks, settings, fixed)
        if name != "ease":  # ease_pop reuses the EASE weights of both windows
            validation.window.forget_models()
            full.forget_models()
        if name == "pop_recent":
            # every later anchor breaks its ties by the tuned recent popularity
            ranks = _popularity_ranks(results[name].params, validation.window, full)
        logger.info("anchor %s: %s", name, results[name].summary())
    logger.info("tuned anchors in %.1fs", time.perf_counter() - started)
    return {name: results[name] for name in settings.names}


def _validation(
    events: pd.DataFrame,
    catalog: Catalog,
    validation_start: float,
    train_end: float,
    seconds: np.ndarray,
    settings: AnchorSettings,
) -> _Validation:
    window = window_of(events, catalog, validation_start)
    purchased = window.purchased()
    bought = [
        purchased.indices[start:end]
        for start, end in zip(purchased.indptr[:-1], purchased.indptr[1:], strict=True)
    ]
    histories = {
        str(user): UserHistory(weights={}, purchased=frozenset(rows.tolist()))
        for user, rows in zip(window.user_ids.tolist(), bought, strict=True)
    }
    labels = events[(seconds >= validation_start) & (seconds < train_end)]
    relevant = relevant_items(labels, catalog, histories)
    users = sample_users(list(relevant), settings.max_users, settings.seed)
    return _Validation(window, users, {user: relevant[user] for user in users})


def _ease_too_big(window: Window, limit: int) -> str | None:
    count = len(active_items(window.matrix("binary")))
    if count > limit:
        return f"{count} items with events exceed ease_max_items={limit} (a dense {count}^2 inverse)"
    return None


def _gram_too_big(window: Window, limit: int) -> str | None:
    """X'X has at most min(sum of squared history lengths, active items squared) non-zeros."""
    matrix = window.matrix("binary")
    lengths = np.diff(matrix.indptr).astype(np.int64)
    bound = min(int((lengths * lengths).sum()), len(active_items(matrix)) ** 2)
    if bound > limit:
        return f"X'X may hold {bound} non-zeros, above neighbour_max_pairs={limit}"
    return None


def _popularity_ranks(params: Params, validation: Window, full: Window) -> dict[str, np.ndarray]:
    return {
        name: tie_ranks(
            window.popularity(params["half_life_hours"], params["weighting"]),
            window.last_seen(),
            window.created_at,
        )
        for name, window in (("validation", validation), ("full", full))
    }


def _tune(
    anchor: Family,
    validation: _Validation,
    full: Window,
    ranks: dict[str, np.ndarray],
    settings: AnchorSettings,
    fixed: Params,
) -> AnchorResult:
    started = time.perf_counter()
    default = {**fixed, **anchor.default}
    if not validation.users or settings.trials <= 0:
        reason = "no validation users" if not validation.users else "no trials allowed"
        recommender = anchor.fit(full, default, ranks["full"])
        return AnchorResult(anchor.name, default, None, None, 0, time.perf_counter() - started,
                            reason, recommender)  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        params = {**fixed, **anchor.suggest(trial)}
        lists = anchor.fit(validation.window, params, ranks["validation"]).recommend(
            validation.users, VALIDATION_K
        )
        return float(np.mean([ndcg_at_k(lists[u], validation.relevant[u], 10) for u in validation.users]))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed))
    study.enqueue_trial(anchor.default)
    cpu_started = time.process_time()

    def out_of_time(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if time.process_time() - cpu_started >= settings.seconds:
            study.stop()  # no trial starts after the guard

    study.optimize(objective, n_trials=settings.trials, callbacks=[out_of_time])
    done = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    best = {**fixed, **study.best_params}
    recommender = anchor.fit(full, best, ranks["full"])
    return AnchorResult(
        name=anchor.name,
        params=best,
        validation_ndcg=float(study.best_value),
        default_validation_ndcg=float(done[0].value) if done and done[0].value is not None else None,
        trials=len(done),
        seconds=time.perf_counter() - started,
        stopped_by="trials" if len(done) >= settings.trials else "time",
        recommender=recommender,
    )


def with_names(settings: AnchorSettings, names: tuple[str, ...]) -> AnchorSettings:
    unknown = set(names) - set(ANCHOR_NAMES)
    if unknown:
        raise ValueError(f"unknown anchors {sorted(unknown)}: choose from {', '.join(ANCHOR_NAMES)}")
    return replace(settings, names=names)
