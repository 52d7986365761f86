"""Quality gate: a freshly trained model replaces production only if it is not measurably worse.

The evidence is one window: the training job scores the candidate and the production model on the same
shoppers and events of its test window (``training.production``: the manifest's ``gate`` block), never
a number production recorded at its own training on another window.

The same window alone does not stop a ratchet: five models each 0.01 worse than the one before all pass
a 0.02 tolerance when each is compared with the last. So the tolerance is a budget: the production
pointer carries ``drift``, the loss accepted since the last model that was at least as good as its
predecessor (each measured on its own same-window comparison), and a candidate is promoted only while
``drift + loss <= tolerance``; a candidate that beats production pays the budget back.

Clicks, once there are enough of them, outrank the offline metric: the candidate's click-through rate
estimated on the logged impressions of its test window (``training.counterfactual``: what shoppers would
have clicked had it ordered the pages they saw) beside production's logged CTR on the same pages. Once
that estimate rests on at least ``min_impressions`` pages it decides (evidence ``counterfactual``): the
candidate is refused when even the top of its 95% interval is below production's logged CTR. The offline
comparison is still made and reported beside it, and its drift carried on.
"""

from __future__ import annotations

from typing import Any

MODEL = "pipeline"
MIN_IMPRESSIONS = 1000  # logged pages under the counterfactual estimate before it decides
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


def fallback_note(evaluation: dict[str, Any]) -> str | None:
    """What the decision must say when the candidate serves an anchor (a simple list, or a personal
    item-item anchor) because the pipeline lost to it on validation (``fallback_to_anchor`` of its
    evaluation or manifest)."""
    fallback = evaluation.get("fallback_to_anchor") or {}
    if not fallback.get("engaged"):
        return None
    what = "the personal anchor" if fallback.get("kind") == "personal" else "the simple list"
    return (
        f"the candidate serves {what} {fallback.get('anchor')} (blend weight"
        f" {fallback.get('weight')}) on its recommendations pages: {fallback.get('reason', '')}"
    )


def decide(
    candidate: dict[str, Any],
    production: dict[str, Any] | None,
    metric: str = "ndcg@10",
    tolerance: float = 0.02,
    min_impressions: int = MIN_IMPRESSIONS,
) -> dict[str, Any]:
    """The counterfactual estimate decides once it rests on ``min_impressions`` pages; otherwise the
    same-window comparison (``offline_decision``). A candidate without its ``metric``, or the first model,
    is decided offline either way."""
    offline = offline_decision(candidate, production, metric, tolerance)
    if _metric(candidate, metric) is None or production is None:
        return offline
    counterfactual = counterfactual_decision(candidate, min_impressions)
    if counterfactual is None:
        return offline
    return {
        **counterfactual,
        "drift": offline.get("drift", drift_of(production)),
        "reasons": counterfactual["reasons"]
        + [f"offline ({offline['evidence']}): {r}" for r in offline["reasons"]],
    }


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


def offline_decision(
    candidate: dict[str, Any],
    production: dict[str, Any] | None,
    metric: str = "ndcg@10",
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """``candidate``: its manifest (or ``evaluation.json``), with the ``gate`` block when the job scored
    production; ``production``: the production pointer (``model_version``, ``gate.drift``), None if none.

    Returns ``promote``, ``reasons``, the ``evidence`` that decided and the ``drift`` production will carry
    if promoted. A candidate that serves a simple list (the fallback) says so in the reasons and
    ``fallback_to_anchor``, whatever the decision."""
    decision = _decide(candidate, production, metric, tolerance)
    note = fallback_note(candidate)
    if note is not None:
        decision["reasons"].append(note)
        decision["fallback_to_anchor"] = True
    return decision


def _decide(
    candidate: dict[str, Any], production: dict[str, Any] | None, metric: str, tolerance: float
) -> dict[str, Any]:
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
