"""Quality gate: a freshly trained model replaces production only if it is not measurably worse.

The evidence is one window: the training job scores the candidate and the production model on the same
shoppers and events of its test window (``training.production``: the manifest's ``gate`` block), never
a number production recorded at its own training on another window.

The same window alone does not stop a ratchet: five models each 0.01 worse than the one before all pass
a 0.02 tolerance when each is compared with the last. So the tolerance is a budget: the production
pointer carries ``drift``, the loss accepted since the last model that was at least as good as its
predecessor (each measured on its own same-window comparison), and a candidate is promoted only while
``drift + loss <= tolerance``; a candidate that beats production pays the budget back.
"""

from __future__ import annotations

from typing import Any

MODEL = "pipeline"
EPSILON = 1e-9  # float noise in a sum of losses must not refuse a model exactly at the tolerance


def _metric(evaluation: dict[str, Any], metric: str) -> float | None:
    """The pipeline's metric from an ``evaluation.json`` or a manifest (``models`` or ``metrics``)."""
    models = evaluation.get("models") or evaluation.get("metrics") or {}
    value = models.get(MODEL, {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def drift_of(pointer: dict[str, Any] | None) -> float:
    """The regression budget production has used (0 for a pointer written before the budget existed)."""
    if pointer is None:
        return 0.0
    return float(pointer.get("gate", {}).get("drift", 0.0))


def decide(
    candidate: dict[str, Any],
    production: dict[str, Any] | None,
    metric: str = "ndcg@10",
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """``candidate``: its manifest (or ``evaluation.json``), with the ``gate`` block when the job scored
    production; ``production``: the production pointer (``model_version``, ``gate.drift``), None if none.

    Returns ``promote``, ``reasons``, the ``evidence`` that decided and the ``drift`` production will carry
    if promoted."""
    own = _metric(candidate, metric)
    if own is None:
        return {
            "promote": False,
            "evidence": "none",
            "reasons": [f"the candidate evaluation has no {MODEL} {metric}"],
        }
    if production is None:
        return {
            "promote": True,
            "evidence": "no production",
            "drift": 0.0,
            "reasons": [f"no production model; candidate {metric} = {own:.4f}"],
        }
    version, drift = production.get("model_version"), drift_of(production)
    gate = candidate.get("gate")
    if not isinstance(gate, dict):
        return {
            "promote": False,
            "evidence": "none",
            "reasons": [f"the candidate was not scored against production {version} on its test window"],
        }
    if gate.get("model_version") not in (None, version):
        return {
            "promote": False,
            "evidence": "stale",
            "reasons": [
                f"the candidate was scored against {gate['model_version']}, but production is now {version};"
                " the next training compares them"
            ],
        }
    if not gate.get("scored"):
        return {
            "promote": True,
            "evidence": "production not scored",
            "drift": drift,
            "reasons": [
                f"production {version} not compared: {gate.get('reason')}; candidate {metric} = {own:.4f}"
            ],
        }
    candidate_score, production_score = float(gate["candidate"]), float(gate["production"])
    loss = production_score - candidate_score
    span = f"{gate.get('window_start')} .. {gate.get('window_end')}"
    window = f"on the same window ({gate.get('users')} shoppers, {span})"
    comparison = (
        f"candidate {metric} {candidate_score:.4f}, production {version} {production_score:.4f} {window}"
    )
    budget = f"regression budget: {drift:.4f} used before, {tolerance} in all"
    if drift + max(loss, 0.0) <= tolerance + EPSILON:
        return {
            "promote": True,
            "evidence": "same window",
            "drift": max(0.0, drift + loss),
            "reasons": [comparison, budget],
        }
    return {
        "promote": False,
        "evidence": "same window",
        "reasons": [comparison, f"{budget}: a loss of {loss:.4f} exceeds what is left"],
    }
