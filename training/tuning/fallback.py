"""Never worse than the best simple list: when the pipeline's page loses on validation to a tuned anchor
the model can serve (a simple list: recent popularity or trending; or a personal item-item anchor: item-kNN
or RP3beta, tuned by ``training.anchors`` on the same window), the blends of that anchor into the ranker's
order (``merchandiser.reranking.blend``, the function serving calls) and the anchor alone are scored on the
same shoppers, and the best becomes what the model serves (``fallback_to_anchor``).

A personal anchor is scored, as the simple lists are, by its own NDCG@10 on the search's shoppers (fitted
on the training window with its tuned settings); to serve it, its item-item weights go into the retrieval
model's signals (``Signals.item_anchor``) and its source (``item_anchor``) gets a share of the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from merchandiser.catalog import Catalog, ItemModel, Neighbours
from merchandiser.reranking import ANCHOR_SIGNALS, FALLBACK
from merchandiser.retrieval import ITEM_ANCHOR, PERSONAL_ANCHORS, RECENT_POPULARITY, TRENDING
from merchandiser.settings import RetailerRules
from training.anchors import anchor_ndcg, anchor_table, served_window
from training.fit import Hyperparameters
from training.simple_lists import SimpleListResult
from training.tuning.choices import ServingChoices
from training.tuning.search import Fit, Pages, Search

BLEND_WEIGHTS = (0.25, 0.5, 0.75)
LIST_ALONE_RULES = {"category_share": 1.0, "discovery_share": 0.0, "explore_share": 0.0}
MIN_FALLBACK_SHARE = 0.05  # of the candidates for the fallback anchor's source: its top of the page fits
ANCHOR_SOURCES = {
    "pop_recent": RECENT_POPULARITY,
    "trending": TRENDING,
    **dict.fromkeys(PERSONAL_ANCHORS, ITEM_ANCHOR),
}
Params = dict[str, Any]


def fallback(
    search: Search,
    lists: Mapping[str, SimpleListResult],
    pipeline: float,
    choices: ServingChoices,
    hp: Hyperparameters,
    fit: Fit,
    pages: Pages,
    personal: Mapping[str, Params] | None = None,
) -> tuple[dict[str, Any], ServingChoices, Pages]:
    """The fallback record (``evaluation.json``'s ``fallback_to_anchor``), the choices to serve with and
    their pages (``pages``: the chosen choices' own): unchanged unless the pipeline's page (``pipeline``)
    lost to the best servable anchor (the simple ``lists``, and the ``personal`` item-item anchors by their
    tuned settings) and an option of serving that anchor beats it on the page. When a personal anchor is
    served, ``fit.late`` keeps its table."""
    validation = {name: result.validation_ndcg for name, result in lists.items()}
    window = served_window(search.train, search.catalog, search.now) if personal else None
    for name, params in (personal or {}).items():
        assert window is not None
        validation[name] = anchor_ndcg(window, name, params, search.objective_users, search.relevant)
    best_name = max(validation, key=lambda name: validation[name])
    best_value = validation[best_name]
    kind = "personal" if best_name in PERSONAL_ANCHORS else "list"
    record: dict[str, Any] = {
        "engaged": False,
        "validation": {"pipeline": round(pipeline, 6), **{k: round(v, 6) for k, v in validation.items()}},
        "best_list": best_name,
        "kind": kind,
    }
    if pipeline >= best_value:
        record["reason"] = f"the pipeline's page ({pipeline:.4f}) is not below {best_name} ({best_value:.4f})"
        return record, choices, pages
    served_signals, served_fallback = fit.late.signals, fit.late.manifest.get(FALLBACK)
    if kind == "personal":
        assert window is not None and personal is not None
        params = dict(personal[best_name])
        record.update(params=params, matrix=str(params["matrix"]))
        table = anchor_table(window, best_name, params)
        fit.late.signals = replace(served_signals, item_anchor=table)
        fit.late.manifest[FALLBACK] = {"matrix": record["matrix"]}  # how the source weights a history
    # the anchor's source must propose the top of the page: at least MIN_FALLBACK_SHARE of the candidates
    shares = _with_share(choices.source_shares, ANCHOR_SOURCES[best_name], MIN_FALLBACK_SHARE)
    fit.share(shares)
    _, shared = search.pages(fit, search.ranker(fit, hp))
    rules = RetailerRules.model_validate(choices.page_rules)
    options: dict[str, float] = {}
    for weight in BLEND_WEIGHTS:
        options[f"blend {weight}"] = search.page_value(shared, rules, best_name, weight)
    alone = RetailerRules.model_validate(LIST_ALONE_RULES)
    options["list alone"] = search.page_value(shared, alone, best_name, 1.0)
    record["validation"]["options"] = {name: round(value, 6) for name, value in options.items()}
    chosen = max(options, key=lambda name: options[name])
    what = "personal anchor" if kind == "personal" else "simple list"
    if options[chosen] <= pipeline:
        fit.late.signals = served_signals
        fit.late.manifest.pop(FALLBACK, None)
        if served_fallback is not None:
            fit.late.manifest[FALLBACK] = served_fallback
        record["reason"] = (
            f"the pipeline's page ({pipeline:.4f}) is below the {what} {best_name} ({best_value:.4f}), but"
            f" no blend of it does better on the page ({options[chosen]:.4f})"
        )
        return record, choices, pages
    weight = 1.0 if chosen == "list alone" else float(chosen.split()[1])
    record.update(
        engaged=True,
        anchor=best_name,
        signal=ITEM_ANCHOR if kind == "personal" else ANCHOR_SIGNALS[best_name],
        weight=weight,
        surfaces=["home", "category"],
        reason=(
            f"the pipeline's page ({pipeline:.4f}) is below the {what} {best_name} ({best_value:.4f}) on"
            f" validation; the page serves {chosen} ({options[chosen]:.4f})"
            + (", scored from each shopper's history (profile and session)" if kind == "personal" else "")
        ),
    )
    page_rules = dict(LIST_ALONE_RULES) if chosen == "list alone" else choices.page_rules
    return record, replace(choices, source_shares=shares, page_rules=page_rules), shared


def _with_share(shares: Mapping[str, float], source: str, minimum: float) -> dict[str, float]:
    """``shares`` with ``source`` at ``minimum`` at least, the others scaled to keep the sum at 1."""
    if shares.get(source, 0.0) >= minimum:
        return dict(shares)
    others = sum(value for name, value in shares.items() if name != source)
    scale = (1.0 - minimum) / others if others > 0 else 0.0
    return {
        **{name: value * scale for name, value in shares.items() if name != source},
        source: minimum,
    }


def with_personal_anchor(
    items: ItemModel, events: pd.DataFrame, catalog: Catalog, now: float, record: Mapping[str, Any]
) -> ItemModel:
    """``items`` (a retrieval model fitted on ``events`` before ``now``) holding the served personal
    anchor's weights fitted on the same window, when the fallback ``record`` serves one; an empty table
    otherwise (so a model never carries another fit's table). Its manifest is updated in place."""
    table = Neighbours.empty(len(catalog))
    if record.get("engaged") and record.get("anchor") in PERSONAL_ANCHORS:
        window = served_window(events, catalog, now)
        table = anchor_table(window, str(record["anchor"]), dict(record["params"]))
    items.signals = replace(items.signals, item_anchor=table)
    return items
