"""The tuned anchors, one row each: name, search space, default settings and how to fit them on a window.

Every family fits from a ``Window`` and its settings into a ``Recommender``; the search (``tuning``) reads
only this table. The default is what a data scientist would try first and is always the search's first
trial, so a search never ends below it.

Search spaces (log scales where the effect is multiplicative):
- ``pop_recent``: half-life 1 hour to 8 weeks; events by type weight or counted once;
- ``trending``: events of the last 6 hours to 2 weeks, half-life 30 minutes to 1 week, weighting;
- ``item_knn``: 5 to 1,000 neighbours per item, shrinkage 0.1 to 1,000, binary or log-weight matrix;
- ``rp3beta``: alpha 0.1 to 1.5, beta 0 to 1, 5 to 1,000 neighbours, matrix;
- ``ease``: lambda 0.01 to 100 times the mean diagonal of X'X, matrix;
- ``ease_pop``: the tuned EASE, blended with popularity of weight 0 to 1 and half-life 1 hour to 8 weeks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from scipy.sparse import csr_matrix

from training.anchors.ease import EaseGram, blend_scorer, ease_gram, ease_scorer, ease_weights_cholesky
from training.anchors.neighbours import cosine_weights, item_gram, item_item_scorer, rp3beta_weights
from training.anchors.ranking import Recommender, Scorer
from training.anchors.window import MATRIX_KINDS, WEIGHTINGS, Window

HOURS_PER_WEEK = 24 * 7
Params = dict[str, Any]


@dataclass(frozen=True)
class Family:
    name: str
    default: Params
    suggest: Callable[[optuna.Trial], Params]
    fit: Callable[[Window, Params, np.ndarray], Recommender]  # (window, settings, tie ranks)


def _pop_recent_space(trial: optuna.Trial) -> Params:
    return {
        "half_life_hours": trial.suggest_float("half_life_hours", 1.0, 8 * HOURS_PER_WEEK, log=True),
        "weighting": trial.suggest_categorical("weighting", WEIGHTINGS),
    }


def _pop_recent(window: Window, params: Params, ranks: np.ndarray) -> Recommender:
    scores = window.popularity(params["half_life_hours"], params["weighting"])
    return Recommender(window, ranks, static=scores)


def _trending_space(trial: optuna.Trial) -> Params:
    return {
        "window_hours": trial.suggest_float("window_hours", 6.0, 2 * HOURS_PER_WEEK, log=True),
        "half_life_hours": trial.suggest_float("half_life_hours", 0.5, HOURS_PER_WEEK, log=True),
        "weighting": trial.suggest_categorical("weighting", WEIGHTINGS),
    }


def _trending(window: Window, params: Params, ranks: np.ndarray) -> Recommender:
    scores = window.popularity(params["half_life_hours"], params["weighting"], params["window_hours"])
    return Recommender(window, ranks, static=scores)


def _item_knn_space(trial: optuna.Trial) -> Params:
    return {
        "neighbours": trial.suggest_int("neighbours", 5, 1000, log=True),
        "shrink": trial.suggest_float("shrink", 0.1, 1000.0, log=True),
        "matrix": trial.suggest_categorical("matrix", MATRIX_KINDS),
    }


def _item_knn(window: Window, params: Params, ranks: np.ndarray) -> Recommender:
    matrix = window.matrix(params["matrix"])
    return Recommender(
        window, ranks, scorer=item_item_scorer(matrix, _item_knn_weights(window, params, ranks))
    )


def _item_knn_weights(window: Window, params: Params, ranks: np.ndarray) -> csr_matrix:
    matrix = window.matrix(params["matrix"])
    gram = window.cached(("gram", params["matrix"]), lambda: item_gram(matrix))
    return cosine_weights(matrix, int(params["neighbours"]), float(params["shrink"]), ranks, gram)


def _rp3beta_space(trial: optuna.Trial) -> Params:
    return {
        "alpha": trial.suggest_float("alpha", 0.1, 1.5),
        "beta": trial.suggest_float("beta", 0.0, 1.0),
        "neighbours": trial.suggest_int("neighbours", 5, 1000, log=True),
        "matrix": trial.suggest_categorical("matrix", MATRIX_KINDS),
    }


def _rp3beta(window: Window, params: Params, ranks: np.ndarray) -> Recommender:
    matrix = window.matrix(params["matrix"])
    return Recommender(
        window, ranks, scorer=item_item_scorer(matrix, _rp3beta_weights(window, params, ranks))
    )


def _rp3beta_weights(window: Window, params: Params, ranks: np.ndarray) -> csr_matrix:
    matrix = window.matrix(params["matrix"])
    return rp3beta_weights(
        matrix, float(params["alpha"]), float(params["beta"]), int(params["neighbours"]), ranks
    )


def _ease_space(trial: optuna.Trial) -> Params:
    return {
        "lambda_scale": trial.suggest_float("lambda_scale", 0.01, 100.0, log=True),
        "matrix": trial.suggest_categorical("matrix", MATRIX_KINDS),
    }


def ease_model(window: Window, matrix_kind: str, lambda_scale: float) -> Scorer:
    """The EASE scorer of a window; the Gram per matrix kind is kept, and the last weights (``ease_pop``
    tries many blends of one EASE)."""
    matrix = window.matrix(matrix_kind)
    gram: EaseGram = window.cached(("ease_gram", matrix_kind), lambda: ease_gram(matrix))
    key = ("ease_weights", matrix_kind, lambda_scale)
    last = window.cached("ease_last", lambda: (None, None))
    if last[0] != key:
        weights = ease_weights_cholesky(gram.gram, lambda_scale * gram.mean_diagonal)
        last = (key, ease_scorer(matrix, gram.active, weights))
        window.remember("ease_last", last)
    scorer: Scorer = last[1]
    return scorer


def _ease(window: Window, params: Params, ranks: np.ndarray) -> Recommender:
    scorer = ease_model(window, params["matrix"], float(params["lambda_scale"]))
    return Recommender(window, ranks, scorer=scorer)


def _ease_pop_space(trial: optuna.Trial) -> Params:
    return {
        "weight": trial.suggest_float("weight", 0.0, 1.0),
        "half_life_hours": trial.suggest_float("half_life_hours", 1.0, 8 * HOURS_PER_WEEK, log=True),
    }


def _ease_pop(window: Window, params: Params, ranks: np.ndarray) -> Recommender:
    ease = ease_model(window, params["matrix"], float(params["lambda_scale"]))
    popularity = window.popularity(float(params["half_life_hours"]), "event_weight")
    return Recommender(window, ranks, scorer=blend_scorer(ease, popularity, float(params["weight"])))


FAMILIES: tuple[Family, ...] = (
    Family(
        "pop_recent", {"half_life_hours": 720.0, "weighting": "event_weight"}, _pop_recent_space,
        _pop_recent,
    ),
    Family(
        "trending", {"window_hours": 336.0, "half_life_hours": 168.0, "weighting": "event_weight"},
        _trending_space, _trending,
    ),
    Family(
        "item_knn", {"neighbours": 100, "shrink": 10.0, "matrix": "binary"}, _item_knn_space, _item_knn,
    ),
    Family(
        "rp3beta", {"alpha": 1.0, "beta": 0.5, "neighbours": 100, "matrix": "binary"}, _rp3beta_space,
        _rp3beta,
    ),
    Family("ease", {"lambda_scale": 1.0, "matrix": "binary"}, _ease_space, _ease),
    # the EASE part of ease_pop is the tuned ease's (its lambda_scale and matrix are added to these)
    Family("ease_pop", {"weight": 0.2, "half_life_hours": 168.0}, _ease_pop_space, _ease_pop),
)  # fmt: skip
ANCHOR_NAMES: tuple[str, ...] = tuple(family.name for family in FAMILIES)
EASE_FAMILIES = ("ease", "ease_pop")
NEIGHBOUR_FAMILIES = ("item_knn", "rp3beta")
# The item-item families' weights W (items, items) on a window: what a model serving one of them holds.
ITEM_WEIGHTS: dict[str, Callable[[Window, Params, np.ndarray], csr_matrix]] = {
    "item_knn": _item_knn_weights,
    "rp3beta": _rp3beta_weights,
}


def family(name: str) -> Family:
    for candidate in FAMILIES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown anchor {name!r}: one of {', '.join(ANCHOR_NAMES)}")
