"""What staff read (the admin routes the console calls): the live model's evaluation and gate decision, a
shopper's recent events, and a search over the served catalogue with what is new, promoted and in stock.

Read-only, and each answer is what serving itself uses: the loaded model with the catalogue overlay, the
retailer's rules with the staff's promotions, the same definition of a new arrival as the page's rules.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from merchandiser.reranking import new_item_rows
from merchandiser.retrieval import POPULARITY, SOURCE_NAMES, TRENDING
from merchandiser.serving.model import Model
from merchandiser.serving.recommender import Recommender
from merchandiser.store import MAX_WINDOW_HOURS, ShopperRecord, decision_key, read_json

SERVED_MODEL = "pipeline"  # the served page, as the evaluation names it
# Evaluated models that are stages of the served page (its ranker, the union of its candidates, each
# personal candidate source alone), not anchors to beat; popularity and trending are both a source and
# the plainest anchors, so they count as anchors.
STAGES = frozenset({"ranker", "union", *SOURCE_NAMES}) - {POPULARITY, TRENDING}
GATE_METRIC = "ndcg@10"
SHOWN_METRICS = ("ndcg@10", "recall@20", "hit@10", "coverage@20")
MAX_SEARCH_RESULTS = 100
ENGAGEMENT_HOURS = MAX_WINDOW_HOURS  # as far back as the trending counters go: 7 days


def _iso(epoch: float) -> str | None:
    return None if math.isnan(epoch) else datetime.fromtimestamp(epoch, UTC).isoformat()


def gate_decision(s3: Any, bucket: str, model_version: str) -> tuple[dict[str, Any] | None, str | None]:
    """The publish step's decision on ``model_version`` and, when it cannot be read, why not."""
    if not bucket:
        return None, "this function has no artifacts bucket to read the gate decision from"
    try:
        decision = read_json(s3, bucket, decision_key(model_version))
    except Exception as error:  # the summary is still worth showing without it
        return None, f"the gate decision could not be read: {type(error).__name__}"
    if decision is None:
        return None, f"no gate decision recorded for {model_version} (a model shipped in the first layer)"
    return decision, None


def model_summary(
    model: Model | None, faults: frozenset[str], decision: dict[str, Any] | None, decision_problem: str | None
) -> dict[str, Any]:
    """The live model: version, when it was trained and on what, its offline metrics against the anchors
    evaluated on the same split, the quality gate's decision, and what the catalogue overlay adds."""
    if model is None:
        return {
            "status": "degraded",
            "model_version": None,
            "faults": sorted(faults),
            "metrics": {},
            "gate": None,
            "gate_problem": "no model is loaded: the last-resort list is served",
        }
    manifest = model.items.manifest
    metrics = {
        name: {key: values[key] for key in SHOWN_METRICS if isinstance(values.get(key), int | float)}
        for name, values in sorted(manifest.get("metrics", {}).items())
        if isinstance(values, dict)
    }
    served = metrics.get(SERVED_MODEL, {}).get(GATE_METRIC)
    anchors = {
        name: values[GATE_METRIC]
        for name, values in metrics.items()
        if name != SERVED_MODEL and name not in STAGES and GATE_METRIC in values
    }
    best = max(anchors, key=lambda name: anchors[name]) if anchors else None
    data = manifest.get("data", {})
    return {
        "status": "degraded" if faults else "ok",
        "model_version": model.version,
        "trained_at": manifest.get("created_at"),
        "data": {
            key: data.get(key)
            for key in ("first_timestamp", "last_timestamp", "interactions", "users", "items")
        },
        "items": len(model.items.catalog),
        "faults": sorted(faults),
        "served_model": SERVED_MODEL,
        "metric": GATE_METRIC,
        "metrics": metrics,
        "anchors": sorted(anchors),
        "stages": sorted(name for name in metrics if name in STAGES),
        "best_anchor": None
        if best is None
        else {
            "name": best,
            GATE_METRIC: anchors[best],
            "ratio": served / anchors[best] if served is not None and anchors[best] else None,
        },
        "gate": decision,
        "gate_problem": decision_problem,
        "overlay": {
            "new_items": int(manifest.get("overlay_items", 0)),
            "updated_items": int(manifest.get("overlay_updates", 0)),
            "promoted_items": list(model.promoted),
        },
    }


def shopper_events(recommender: Recommender, shopper: ShopperRecord) -> dict[str, Any]:
    """The shopper's session events (newest first) and the latest items of their trained profile."""
    catalog = recommender.items.catalog

    def described(item_id: str) -> dict[str, Any]:
        row = catalog.row_of.get(item_id)
        if row is None:
            return {"item_id": item_id, "title": None, "category": None}
        return {
            "item_id": item_id,
            "title": str(catalog.titles[row]),
            "category": str(catalog.categories[row]),
        }

    return {
        "user_id": shopper.user_id,
        "known": shopper.known,
        "attributes": shopper.attributes,
        "purchased": len(shopper.purchased),
        "events": [
            {
                "event_id": event.event_id,
                **described(event.item_id),
                "event_type": event.event_type,
                "timestamp": _iso(event.ts),
            }
            for event in shopper.session
        ],
        "profile_recent": [described(item_id) for item_id in shopper.recent],
    }


def search_items(
    recommender: Recommender,
    query: str | None,
    k: int,
    new_only: bool,
    now: float,
    engagement: dict[str, float],
) -> dict[str, Any]:
    """Items whose id or title contains ``query`` (case-insensitive; an exact id first, then the most
    popular), or with ``new_only`` the new items, newest first: explored new arrivals (no interactions,
    created within the rules' ``new_item_days``) and items added since the training (catalogue overlay).
    ``engagement`` is each item's weighted events over the last 7 days (the trending counters)."""
    items = recommender.items
    catalog = items.catalog
    rules = recommender.merchandising
    explored = set(new_item_rows(items, now, rules.new_item_days).tolist())
    added = len(catalog) - int(items.manifest.get("overlay_items", 0))
    new_rows = explored | set(range(added, len(catalog)))
    if new_only:
        candidates = np.array(sorted(new_rows), dtype=np.int64)
    else:
        candidates = np.arange(len(catalog), dtype=np.int64)
    if query:
        needle = query.casefold()
        ids = np.char.lower(catalog.item_ids[candidates].astype(str))
        titles = np.char.lower(catalog.titles[candidates].astype(str))
        hit = (np.char.find(ids, needle) >= 0) | (np.char.find(titles, needle) >= 0)
        candidates = candidates[hit]
    if new_only and not query:
        created = np.nan_to_num(np.asarray(catalog.created_at, dtype=np.float64)[candidates], nan=np.inf)
        # added since training first (no creation time known), then the newest
        order = np.lexsort((candidates, -created))
    else:
        exact = np.char.lower(catalog.item_ids[candidates].astype(str)) == (query or "").casefold()
        order = np.lexsort((candidates, -np.asarray(items.popularity)[candidates], ~exact))
    chosen = candidates[order][:k]
    promoted = set(rules.promoted_item_ids)
    found = []
    for row in chosen.tolist():
        item_id = str(catalog.item_ids[row])
        price = float(catalog.prices[row])
        found.append(
            {
                "item_id": item_id,
                "title": str(catalog.titles[row]),
                "category": str(catalog.categories[row]),
                "brand": str(catalog.brands[row]),
                "price": None if math.isnan(price) else price,
                "in_stock": bool(catalog.in_stock[row]),
                "promoted": item_id in promoted,
                "new": row in new_rows,
                "explored": row in explored,
                "added_since_training": row >= added,
                "created_at": _iso(float(catalog.created_at[row])),
                "events_7d": round(engagement.get(item_id, 0.0), 3),
            }
        )
    return {"query": query, "new_only": new_only, "matches": len(candidates), "items": found}
