"""Never worse than the best simple list: when the pipeline's page loses to a tuned simple list on
validation, the blends of that list into the ranker's order (``merchandiser.reranking.blend``) and the list
alone are scored on the same shoppers, and the best becomes what the model serves (``fallback_to_anchor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from merchandiser.reranking import ANCHOR_SIGNALS
from merchandiser.retrieval import RECENT_POPULARITY, TRENDING
from merchandiser.settings import RetailerRules
from training.fit import Hyperparameters
from training.simple_lists import SimpleListResult
from training.tuning.choices import ServingChoices
from training.tuning.search import Fit, Pages, Search

BLEND_WEIGHTS = (0.25, 0.5, 0.75)
LIST_ALONE_RULES = {"category_share": 1.0, "discovery_share": 0.0, "explore_share": 0.0}
MIN_FALLBACK_SHARE = 0.05  # of the candidates for the fallback list's source: its top of the page fits
LIST_SOURCES = {"pop_recent": RECENT_POPULARITY, "trending": TRENDING}


def fallback(
    search: Search,
    lists: Mapping[str, SimpleListResult],
    pipeline: float,
    choices: ServingChoices,
    hp: Hyperparameters,
    fit: Fit,
    pages: Pages,
) -> tuple[dict[str, Any], ServingChoices, Pages]:
    """The fallback record (``evaluation.json``'s ``fallback_to_anchor``), the choices to serve with and
    their pages (``pages``: the chosen choices' own): unchanged unless the pipeline's page (``pipeline``)
    lost to the best simple list and an option of serving that list beats it on the page."""
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
        record["reason"] = f"the pipeline's page ({pipeline:.4f}) is not below {best_name} ({best_list:.4f})"
        return record, choices, pages
    # the list's source must propose the top of the page: at least MIN_FALLBACK_SHARE of the candidates
    shares = _with_share(choices.source_shares, LIST_SOURCES[best_name], MIN_FALLBACK_SHARE)
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
    if options[chosen] <= pipeline:
        record["reason"] = (
            f"the pipeline's page ({pipeline:.4f}) is below {best_name} ({best_list:.4f}), but no blend"
            f" of it does better on the page ({options[chosen]:.4f})"
        )
        return record, choices, pages
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
    return record, replace(choices, source_shares=shares, page_rules=page_rules), shared


def _with_share(shares: Mapping[str, float], source: str, minimum: float) -> dict[str, float]:
    """``shares`` with ``source`` at ``minimum`` at least, the others scaled to keep the sum at 1."""
    if shares.get(source, 0.0) >= minimum:
        return dict(shares)
    others = sum(value for name, value in shares.items() if name != source)
    scale = (1.0 - minimum) / others if others > 0 else 0.0
    return {name: (minimum if name == source else value * scale) for name, value in shares.items()}
