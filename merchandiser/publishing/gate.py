"""Quality gate: a freshly trained model replaces production only if it is not measurably worse."""

from __future__ import annotations

from typing import Any

MODEL = "pipeline"


def _metric(evaluation: dict[str, Any], metric: str) -> float | None:
    """The pipeline's metric from an ``evaluation.json`` or a manifest (``models`` or ``metrics``)."""
    models = evaluation.get("models") or evaluation.get("metrics") or {}
    value = models.get(MODEL, {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def fallback_note(evaluation: dict[str, Any]) -> str | None:
    """What the decision must say when the candidate serves a simple list because the pipeline lost to it
    on validation (``fallback_to_anchor`` of its evaluation or manifest)."""
    fallback = evaluation.get("fallback_to_anchor") or {}
    if not fallback.get("engaged"):
        return None
    return (
        f"the candidate serves the simple list {fallback.get('anchor')} (blend weight"
        f" {fallback.get('weight')}) on its recommendations pages: {fallback.get('reason', '')}"
    )


def decide(
    candidate_eval: dict[str, Any],
    production_manifest: dict[str, Any] | None,
    metric: str = "ndcg@10",
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """Promote when there is no production model, or when the candidate's ``metric`` is at least
    the production one minus ``tolerance`` (absolute); a candidate without the metric is refused. A
    candidate that serves a simple list (the fallback) says so in the reasons and ``fallback_to_anchor``."""
    decision = _decide(candidate_eval, production_manifest, metric, tolerance)
    note = fallback_note(candidate_eval)
    if note is not None:
        decision["reasons"].append(note)
        decision["fallback_to_anchor"] = True
    return decision


def _decide(
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
