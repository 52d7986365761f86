"""Quality gate: a freshly trained model replaces production only if it is not measurably worse.

Two kinds of evidence, and the decision says which one decided (``evidence``):

- ``counterfactual``: the candidate's click-through rate estimated on the logged impressions of its test
  window (``training.counterfactual``: what shoppers would have clicked had it ordered the pages they saw),
  beside production's logged CTR on the same pages. Once the estimate rests on at least
  ``min_impressions`` pages it decides: the candidate is refused when even the top of its 95% interval is
  below production's logged CTR;
- ``offline``: with fewer impressions, the candidate's offline ``metric`` on the held-out future against
  the one production recorded, within ``tolerance``.
"""

from __future__ import annotations

from typing import Any

MODEL = "pipeline"
MIN_IMPRESSIONS = 1000  # logged pages under the counterfactual estimate before it decides


def _metric(evaluation: dict[str, Any], metric: str) -> float | None:
    """The pipeline's metric from an ``evaluation.json`` or a manifest (``models`` or ``metrics``)."""
    models = evaluation.get("models") or evaluation.get("metrics") or {}
    value = models.get(MODEL, {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def counterfactual_decision(evaluation: dict[str, Any], min_impressions: int) -> dict[str, Any] | None:
    """The decision of the counterfactual estimate, or None when it rests on too few impressions."""
    block = evaluation.get("counterfactual")
    if not isinstance(block, dict):
        return None
    pages = block.get("impressions") or 0
    figures = [block.get(name) for name in ("logged_ctr", "estimated_ctr", "ci_low", "ci_high")]
    numbers = [float(value) for value in figures if isinstance(value, int | float)]
    if pages < min_impressions or len(numbers) < len(figures):
        return None
    logged, estimated, low, high = numbers
    summary = (
        f"counterfactual CTR {estimated:.4f} [{low:.4f}, {high:.4f}] ({block.get('estimator')}, {pages} "
        f"impressions) vs production's logged CTR {logged:.4f}"
    )
    if high < logged:
        return {"promote": False, "evidence": "counterfactual", "reasons": [f"{summary}: worse"]}
    return {"promote": True, "evidence": "counterfactual", "reasons": [f"{summary}: not worse"]}


def decide(
    candidate_eval: dict[str, Any],
    production_manifest: dict[str, Any] | None,
    metric: str = "ndcg@10",
    tolerance: float = 0.02,
    min_impressions: int = MIN_IMPRESSIONS,
) -> dict[str, Any]:
    """The counterfactual estimate decides once it rests on ``min_impressions`` pages; otherwise promote
    when there is no production model, or when the candidate's ``metric`` is at least the production one
    minus ``tolerance`` (absolute). A candidate without the metric is refused either way."""
    offline = _offline(candidate_eval, production_manifest, metric, tolerance)
    if _metric(candidate_eval, metric) is None or production_manifest is None:
        return offline
    counterfactual = counterfactual_decision(candidate_eval, min_impressions)
    if counterfactual is None:
        return offline
    return {
        **counterfactual,
        "reasons": counterfactual["reasons"] + [f"offline: {r}" for r in offline["reasons"]],
    }


def _offline(
    candidate_eval: dict[str, Any],
    production_manifest: dict[str, Any] | None,
    metric: str,
    tolerance: float,
) -> dict[str, Any]:
    result = _offline_decision(candidate_eval, production_manifest, metric, tolerance)
    return {**result, "evidence": "offline"}


def _offline_decision(
    candidate_eval: dict[str, Any],
    production_manifest: dict[str, Any] | None,
    metric: str,
    tolerance: float,
) -> dict[str, Any]:
    candidate = _metric(candidate_eval, metric)
    if candidate is None:
        return {"promote": False, "reasons": [f"the candidate evaluation has no {MODEL} {metric}"]}
    if production_manifest is None:
        return {"promote": True, "reasons": [f"no production model; candidate {metric} = {candidate:.4f}"]}
    production = _metric(production_manifest, metric)
    if production is None:
        return {
            "promote": True,
            "reasons": [f"the production model records no {metric}; candidate {metric} = {candidate:.4f}"],
        }
    floor = production - tolerance
    if candidate >= floor:
        return {
            "promote": True,
            "reasons": [
                f"candidate {metric} {candidate:.4f} >= production {production:.4f} - tolerance {tolerance}"
            ],
        }
    return {
        "promote": False,
        "reasons": [
            f"candidate {metric} {candidate:.4f} < production {production:.4f} - tolerance {tolerance}"
        ],
    }
