"""The production model scored on the candidate's own test window, for the quality gate.

Comparing a candidate's metric with the one production recorded at its own training compares two
windows; a run of slightly worse models can then each pass against the last. So the job is given the
production model (the ``production`` channel: ``models/<version>/`` of the production pointer, added by
the training trigger) and scores it and the candidate on the same shoppers, the same events and the
same histories, with the same served-page code.

Which events: the candidate's test window, minus what production was trained on. Production's data may
reach into that window (it was trained yesterday on data up to yesterday), and scoring a model on
events it learned from flatters it; so only test events after production's ``data.last_timestamp`` are
used. When fewer than ``gate_min_users`` shoppers are active there (production has seen almost every
event the candidate has), the comparison is not made and the gate says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merchandiser.catalog import Catalog
from merchandiser.serving import Model
from merchandiser.settings import RetailerRules
from merchandiser.shopper import UserState, state_from_rows
from merchandiser.store import read_manifest
from training.evaluation import served_lists
from training.fit import Hyperparameters, UserHistory, relevant_items, sample_users
from training.metrics import ndcg_at_k

logger = logging.getLogger(__name__)

GATE_METRIC = "ndcg@10"


def score_production(
    candidate: Model,
    production_dir: Path,
    histories: Mapping[str, UserHistory],
    test_events: pd.DataFrame,
    now: float,
    hp: Hyperparameters,
    segments: Mapping[str, tuple[str, ...]] | None = None,
    retailer: RetailerRules | None = None,
) -> dict[str, Any]:
    """The gate's evidence: ``candidate`` (the model evaluated on the test window) and the production
    model in ``production_dir`` scored on the same window, or why they could not be (``scored`` false)."""
    try:
        manifest = read_manifest(production_dir)
        production = Model.load(production_dir)
    except Exception as error:  # missing, corrupt, or written by an incompatible version: say which
        logger.warning("production model in %s cannot be scored: %s", production_dir, error)
        return {"scored": False, "model_version": None, "reason": f"production model unreadable: {error}"}
    version = production.version
    seen_until = manifest.get("data", {}).get("last_timestamp")
    window = test_events
    if seen_until:
        window = test_events[test_events["timestamp"] > pd.Timestamp(seen_until)]
    relevant = relevant_items(window, candidate.items.catalog, dict(histories))
    users = sample_users(list(relevant), hp.max_eval_users, hp.seed)
    evidence: dict[str, Any] = {
        "model_version": version,
        "metric": GATE_METRIC,
        "production_data_until": seen_until,
        "window_start": window["timestamp"].min().isoformat() if len(window) else None,
        "window_end": window["timestamp"].max().isoformat() if len(window) else None,
        "users": len(users),
    }
    if len(users) < hp.gate_min_users:
        reason = (
            f"{len(users)} shoppers active in the test window after production's data"
            f" ({seen_until}); the comparison needs at least {hp.gate_min_users}"
        )
        return {**evidence, "scored": False, "reason": reason}
    retailer = retailer or RetailerRules()
    segments = segments or {}
    candidate_rows = candidate.items.catalog
    scores: dict[str, list[float]] = {"candidate": [], "production": []}
    for user in users:
        history = histories.get(user)
        for name, model in (("candidate", candidate), ("production", production)):
            state = _state(model, history, candidate_rows, segments.get(user, ()))
            _, page = served_lists(model, state, now, hp.candidates, user, retailer)
            shown = page if model is candidate else _rows_in(page, model.items.catalog, candidate_rows)
            scores[name].append(ndcg_at_k(shown, relevant[user], 10))
    result = {**evidence, "scored": True}
    result.update({name: float(np.mean(values)) for name, values in scores.items()})
    logger.info(
        "gate window: candidate %s %.4f, production %s %.4f over %d shoppers",
        GATE_METRIC,
        result["candidate"],
        version,
        result["production"],
        len(users),
    )
    return result


def _state(
    model: Model, history: UserHistory | None, rows_of: Catalog, segments: tuple[str, ...]
) -> UserState:
    """The shopper's state for ``model``: the history (item rows of the candidate's catalogue ``rows_of``)
    moved to ``model``'s rows; items ``model`` does not know are left out."""
    if history is None:
        return state_from_rows(model.items, {}, [], frozenset(), None, segments)
    row_of = model.items.catalog.row_of

    def moved(row: int) -> int | None:
        return row_of.get(str(rows_of.item_ids[row]))

    weights: dict[int, float] = {}
    for row, weight in history.weights.items():
        if (target := moved(row)) is not None:
            weights[target] = weight
    recent = [row for row in map(moved, history.recent) if row is not None]
    purchased = frozenset(row for row in map(moved, history.purchased) if row is not None)
    return state_from_rows(
        model.items, weights, recent, purchased, history.category_seen, history.segments or segments
    )


def _rows_in(rows: list[int], catalog: Catalog, target: Catalog) -> list[int]:
    """``rows`` of ``catalog`` as rows of ``target``; an item ``target`` lacks keeps its place as -1, which
    is never relevant."""
    return [target.row_of.get(str(catalog.item_ids[row]), -1) for row in rows]
