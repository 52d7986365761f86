"""The archive's impressions beside its events: what was shown, where, and what was clicked.

The ``impressions`` channel (``impressions/`` of the artifacts bucket, one record per served page, see
``merchandiser.serving.impressions``) is flattened to one row per shown item; a click, cart or purchase
event carrying the page's ``recommendation_id`` and the item's ``position`` labels its row (as
``merchandiser/experiments/report.sql`` attributes them). Then ``position_evidence`` runs the steps the
training job and ``merchandiser retrain`` share: the propensities (``training.position_bias``), the
candidate's counterfactual CTR on the pages of the test window (``training.counterfactual``), and the
click ranker's comparison of debiased fits (``training.click_ranker``).
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merchandiser.ranking import FEATURE_NAMES, ranking_features, score
from merchandiser.retrieval import candidates_for
from merchandiser.serving import Model
from merchandiser.shopper import state_from_rows
from training.channels import drop_erased, parse_timestamps, read_tombstones
from training.click_ranker import ClickLists, choose_click_ranker
from training.counterfactual import counterfactual_ctr, positions_by_score
from training.fit import Hyperparameters, UserHistory
from training.position_bias import PropensityEstimate, flat_estimate

logger = logging.getLogger(__name__)

HELD_OUT_SHARE = 0.2  # of a window's shoppers, whose pages compare the debiased fits
LABELS = {"click": 1, "add_to_cart": 2, "purchase": 3}  # graded: a purchase says more than a click
SHOWN_COLUMNS = ("page", "query", "user_id", "surface", "variant", "model_version", "timestamp",
                 "item_id", "position", "ranked_position", "swapped")  # fmt: skip


def read_impressions(directory: Path, interactions_dir: Path | None = None) -> pd.DataFrame:
    """One row per shown item from every ``*.jsonl[.gz]`` under ``directory``; an erased shopper's pages
    (tombstones in ``interactions_dir``) up to the erasure are left out, as their events are."""
    records: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("*.jsonl*")):
        if any(part.startswith((".", "_")) for part in path.relative_to(directory).parts):
            continue
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the archive keeps every raw record; a broken line teaches nothing
                if isinstance(record, dict) and record.get("record_type") == "impression":
                    records.append(record)
    rows = [
        {
            "page": str(record["recommendation_id"]),
            "query": f"{record.get('user_id') or record['recommendation_id']}|{record.get('surface', '')}",
            "user_id": str(record.get("user_id") or ""),
            "surface": str(record.get("surface", "")),
            "variant": str(record.get("variant", "")),
            "model_version": str(record.get("model_version", "")),
            "timestamp": record.get("timestamp"),
            "item_id": str(item["item_id"]),
            "position": int(item["position"]),
            "ranked_position": int(_first_known(item.get("ranked_position"), item["position"])),
            "swapped": bool(item.get("swapped", False)),
        }
        for record in records
        if isinstance(record.get("items"), list) and record.get("recommendation_id")
        for item in record["items"]
        if isinstance(item, dict) and "item_id" in item and "position" in item
    ]
    shown = pd.DataFrame(rows, columns=list(SHOWN_COLUMNS))
    shown["timestamp"] = parse_timestamps(shown["timestamp"].astype("string"))
    shown = shown[shown["timestamp"].notna()]
    if interactions_dir is not None:
        shown, _ = drop_erased(shown.reset_index(drop=True), read_tombstones(interactions_dir))
    return shown.drop_duplicates(["page", "position"]).reset_index(drop=True)


def _first_known(value: Any, default: Any) -> Any:
    return default if value is None else value


def attribute_events(shown: pd.DataFrame, interactions: pd.DataFrame) -> pd.DataFrame:
    """``shown`` with ``label`` (the best event on the item: 0 none, ``LABELS``) and ``clicked``."""
    labelled = shown.assign(label=0)
    if "recommendation_id" not in interactions.columns or "position" not in interactions.columns:
        return labelled.assign(clicked=False)
    events = interactions[interactions["event_type"].isin(LABELS) & interactions["recommendation_id"].notna()]
    events = pd.DataFrame(
        {
            "page": events["recommendation_id"].astype(str),
            "position": pd.to_numeric(events["position"], errors="coerce"),
            "item_id": events["item_id"].astype(str),
            "grade": events["event_type"].map(LABELS),
        }
    ).dropna()
    events["position"] = events["position"].astype(np.int64)
    best = events.groupby(["page", "position", "item_id"], as_index=False)["grade"].max()
    labelled = labelled.merge(best, on=["page", "position", "item_id"], how="left")
    labelled["label"] = labelled["grade"].fillna(0).astype(np.int64)
    return labelled.drop(columns="grade").assign(clicked=lambda frame: frame["label"] > 0)


def page_features(
    model: Model,
    shown: pd.DataFrame,
    histories: dict[str, UserHistory],
    now: float,
    segments: dict[str, tuple[str, ...]] | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The rows of pages whose items the catalogue knows, their ranking features (each shopper as of
    ``now``) and the candidate model's score of each, in ``shown``'s page order."""
    segments = segments or {}
    items = model.items
    row_of = items.catalog.row_of
    if shown.empty:
        return shown, np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0)
    known = shown["item_id"].map(lambda item_id: item_id in row_of)
    complete = known.groupby(shown["page"]).transform("all")
    kept = shown[complete].sort_values(["page", "position"], kind="stable").reset_index(drop=True)
    features, scores = [], []
    for (_page, user_id), group in kept.groupby(["page", "user_id"], sort=False):
        history = histories.get(str(user_id))
        state = (
            history.state(items)
            if history is not None
            else state_from_rows(items, {}, [], frozenset(), None, segments.get(str(user_id), ()))
        )
        rows = np.fromiter((row_of[item_id] for item_id in group["item_id"]), dtype=np.int64)
        candidates = candidates_for(items, state, rows)
        features.append(ranking_features(state, candidates, items, now))
        scores.append(score(model.ranker, items, state, candidates, now))
    if not features:
        return kept, np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0)
    return kept, np.vstack(features), np.concatenate(scores)


def click_lists(rows: pd.DataFrame, features: np.ndarray) -> ClickLists:
    groups = rows.groupby("page", sort=False).size().tolist()
    return ClickLists(
        features, rows["label"].to_numpy(np.float32), rows["position"].to_numpy(np.int64), groups
    )


def labelled_impressions(
    shown: pd.DataFrame, interactions: pd.DataFrame, test_start: pd.Timestamp, hp: Hyperparameters
) -> pd.DataFrame:
    """The shown items from ``impression_window_days`` before the test window on, labelled by the events."""
    window_start = test_start - pd.Timedelta(days=hp.impression_window_days)
    return attribute_events(shown[shown["timestamp"] >= window_start], interactions)


def window_pages(
    labelled: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp | None,
    model: Model,
    histories: dict[str, UserHistory],
    now: float,
    segments: dict[str, tuple[str, ...]] | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``page_features`` of the pages served in [start, end) (end None: to the last)."""
    if labelled is None:
        empty = pd.DataFrame(columns=[*SHOWN_COLUMNS, "label", "clicked"])
        return empty, np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0)
    inside = labelled["timestamp"] >= start
    if end is not None:
        inside &= labelled["timestamp"] < end
    return page_features(model, labelled[inside], histories, now, segments)


def compare_debiasing(
    rows: pd.DataFrame, features: np.ndarray, estimate: PropensityEstimate, hp: Hyperparameters
) -> dict[str, Any]:
    """The click ranker's fits (``training.click_ranker``) on a window's pages, a fifth of the shoppers held
    out; ``kept`` is the debiasing the ranker uses (``hp.page_debiasing`` when the pages are too few)."""
    lists = click_lists(rows, features).with_clicks() if len(rows) else None
    if lists is None or len(lists) < hp.min_click_pages:
        pages = 0 if lists is None else len(lists)
        return {
            "trained": False,
            "kept": hp.page_debiasing,
            "reason": f"{pages} pages with a click, fewer than {hp.min_click_pages}",
        }
    clicked_pages = rows.groupby("page", sort=False)["label"].max() > 0
    page_users = rows.groupby("page", sort=False)["user_id"].first()[clicked_pages]
    held = np.array([hash_share(user, hp.seed) < HELD_OUT_SHARE for user in page_users.tolist()])
    params = {
        "learning_rate": hp.ranker_learning_rate,
        "num_leaves": hp.click_ranker_leaves,
        "min_data_in_leaf": hp.click_ranker_min_data_in_leaf,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": hp.threads,
        "seed": hp.seed,
        "verbosity": -1,
    }
    _, info = choose_click_ranker(
        lists.pages(~held),
        lists.pages(held),
        estimate,
        list(FEATURE_NAMES),
        params,
        hp.click_ranker_rounds,
        hp.position_bias_regularization,
    )
    return {"trained": True, **info}


def no_position_evidence() -> dict[str, Any]:
    """What ``evaluation.json`` says when the job had no impressions: no correction, no counterfactual."""
    estimate = flat_estimate()
    empty = pd.DataFrame({"page": [], "position": [], "clicked": []})
    return {
        "position_propensities": estimate.propensities,
        "counterfactual": counterfactual_ctr(empty, np.empty(0, np.int64), estimate),
        "position_bias": {
            **estimate.summary(),
            "click_ranker": {"trained": False, "reason": "no impressions"},
        },
    }


def position_evidence(
    estimate: PropensityEstimate,
    test_rows: pd.DataFrame,
    candidate_scores: np.ndarray,
    comparison: dict[str, Any],
    hp: Hyperparameters,
) -> dict[str, Any]:
    """``evaluation.json``'s ``position_propensities``, ``counterfactual`` (the candidate re-ordering the
    test window's pages by ``candidate_scores``) and ``position_bias`` (the estimate's details and the
    click ranker's comparison)."""
    counterfactual = counterfactual_ctr(test_rows, positions_by_score(test_rows, candidate_scores), estimate)
    logger.info("counterfactual %s", counterfactual)
    return {
        "position_propensities": estimate.propensities,
        "counterfactual": counterfactual,
        "position_bias": {
            **estimate.summary(),
            "window_days": hp.impression_window_days,
            "click_ranker": comparison,
        },
    }


def hash_share(key: str, seed: int) -> float:
    """A stable number in [0, 1) per key (Python's ``hash`` changes between processes)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
