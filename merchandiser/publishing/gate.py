"""Quality gate: a freshly trained model replaces production only if it is not measurably worse."""

from __future__ import annotations

from typing import Any

MODEL = "pipeline"


def _metric(evaluation: dict[str, Any], metric: str) -> float | None:
    """The pipeline's metric from an ``evaluation.json`` or a manifest (``models`` or ``metrics``)."""
    models = evaluation.get("models") or evaluation.get("metrics") or {}
    value = models.get(MODEL, {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def decide(
    candidate_eval: dict[str, Any],
    production_manifest: dict[str, Any] | None,
    metric: str = "ndcg@10",
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """Promote when there is no production model, or when the candidate's ``metric`` is at least
    the production one minus ``tolerance`` (absolute); a candidate without the metric is refused."""
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
