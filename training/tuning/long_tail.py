"""The long-tail correction's strength (``merchandiser.reranking.long_tail_scores``), chosen on the validation
window after every other stage: the served pages of the search's shoppers, with the chosen rules and
fallback, are scored for each strength of ``STRENGTHS`` with ``Search.page_metrics`` (NDCG@10, coverage@20,
long-tail share of the top 20), and the largest strength whose NDCG@10 is within ``MAX_NDCG_DROP`` of no
correction while coverage@20 and the long-tail share both rise is what the model serves
(``long_tail_correction``); 0 when none does. Never worse than the best simple list comes first: a strength
must also keep NDCG@10 at or above the best tuned anchor's on the same validation window (the fallback
record's), or the correction would trade away the very margin the fallback bought (``sparse_views``,
2026-11-30: the served RP3beta page at 0.5231, the anchor at 0.5153, strength 0.15 took it to 0.5148).

The grid stops at the first strength that costs more than ``STOP_DROP`` of NDCG@10: NDCG@10 falls
steadily with the strength beyond it (Online Retail, 2026-11-30: -2% at 0.1, -10% at 0.2, -26% at 0.3,
-48% at 0.5), so the stronger ones would only spend the job's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from merchandiser.reranking import check_strength
from merchandiser.settings import RetailerRules
from training.tuning.choices import ServingChoices
from training.tuning.search import Pages, Search

STRENGTHS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
MAX_NDCG_DROP = 0.02  # of NDCG@10, relative to no correction (issue 11's target)
STOP_DROP = 2 * MAX_NDCG_DROP
METRICS = ("ndcg@10", "coverage@20", "long_tail@20")


def long_tail(search: Search, pages: Pages, choices: ServingChoices) -> dict[str, Any]:
    """The correction record (``evaluation.json``'s and the manifest's ``long_tail_correction``) for the
    pages ``pages`` served with ``choices`` (their page rules, their fallback when engaged)."""
    rules = RetailerRules.model_validate(choices.page_rules)
    anchor, weight = _engaged(choices.fallback) or (None, 0.0)
    base = search.page_metrics(pages, rules, anchor, weight, 0.0)
    figures = {0.0: base}
    for strength in STRENGTHS:
        figures[strength] = search.page_metrics(pages, rules, anchor, weight, strength)
        if figures[strength]["ndcg@10"] < (1.0 - STOP_DROP) * base["ndcg@10"]:
            break
    return choose_strength(figures, floor=anchor_floor(choices.fallback))


def anchor_floor(fallback: Mapping[str, Any]) -> float:
    """The best tuned anchor's validation NDCG@10 in the fallback record (0 when it holds none)."""
    validation = fallback.get("validation") or {}
    anchors = [value for name, value in validation.items() if name != "pipeline" and isinstance(value, float)]
    return max(anchors, default=0.0)


def choose_strength(
    figures: Mapping[float, Mapping[str, float]], max_drop: float = MAX_NDCG_DROP, floor: float = 0.0
) -> dict[str, Any]:
    """The largest strength (a key of ``figures``, 0 among them: no correction) whose NDCG@10 is within
    ``max_drop`` of 0's and at least ``floor`` (the best anchor's) while its coverage@20 and long-tail share
    are above 0's; 0 when none is."""
    if 0.0 not in figures:
        raise ValueError("the figures hold no page without the correction (strength 0) to compare with")
    for strength in figures:
        check_strength(strength)
    base = figures[0.0]
    least = max((1.0 - max_drop) * base["ndcg@10"], floor)
    fitting = [
        strength
        for strength, row in figures.items()
        if strength > 0
        and row["ndcg@10"] >= least
        and row["coverage@20"] > base["coverage@20"]
        and row["long_tail@20"] > base["long_tail@20"]
    ]
    chosen = max(fitting, default=0.0)
    record: dict[str, Any] = {
        "engaged": chosen > 0,
        "strength": chosen,
        "max_ndcg_drop": max_drop,
        "anchor_floor": round(floor, 6),
        "rule": (
            f"the largest strength whose validation NDCG@10 is within {max_drop:.0%} of none and not below"
            " the best tuned anchor's while coverage@20 and the long-tail share of the top 20 rise"
        ),
        "validation": {
            str(strength): {metric: round(float(row[metric]), 6) for metric in METRICS}
            for strength, row in sorted(figures.items())
        },
    }
    if not chosen:
        record["reason"] = (
            f"no strength of {', '.join(str(s) for s in sorted(figures) if s > 0) or 'none tried'} kept"
            f" NDCG@10 within {max_drop:.0%} of none ({base['ndcg@10']:.4f}) and at or above the best tuned"
            f" anchor's ({floor:.4f}) while raising both coverage@20 and the long-tail share"
        )
        return record
    row = figures[chosen]
    record["reason"] = (
        f"strength {chosen}: NDCG@10 {base['ndcg@10']:.4f} -> {row['ndcg@10']:.4f}"
        f" ({_change(row['ndcg@10'], base['ndcg@10']):+.1%}), coverage@20 {base['coverage@20']:.3f} ->"
        f" {row['coverage@20']:.3f}, long-tail@20 {base['long_tail@20']:.3f} -> {row['long_tail@20']:.3f}"
        " on validation"
    )
    return record


def off(reason: str) -> dict[str, Any]:
    """The record of a job that chose no strength (no tuning: nothing to choose it on)."""
    return {"engaged": False, "strength": 0.0, "max_ndcg_drop": MAX_NDCG_DROP, "reason": reason}


def _engaged(fallback: Mapping[str, Any]) -> tuple[str, float] | None:
    if not fallback.get("engaged"):
        return None
    return str(fallback["anchor"]), float(fallback.get("weight", 1.0))


def _change(value: float, base: float) -> float:
    return (value - base) / base if base else 0.0
