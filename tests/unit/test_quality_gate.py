"""Quality gate: candidate and production scored on the same window, with a regression budget."""

from __future__ import annotations

from typing import Any

from merchandiser.publishing import decide


def candidate(ndcg: float = 0.3, gate: dict[str, Any] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {"model_version": "new", "metrics": {"pipeline": {"ndcg@10": ndcg}}}
    if gate is not None:
        manifest["gate"] = gate
    return manifest


def same_window(candidate_score: float, production_score: float, version: str = "v1") -> dict[str, Any]:
    return {"scored": True, "model_version": version, "candidate": candidate_score,
            "production": production_score, "users": 400, "window_start": "a", "window_end": "b"}  # fmt: skip


def pointer(version: str = "v1", drift: float = 0.0) -> dict[str, Any]:
    return {"model_version": version, "gate": {"drift": drift}, "manifest": {"model_version": version}}


def test_first_model_is_promoted() -> None:
    # Given no production model / When deciding / Then promote
    decision = decide(candidate(0.2), None)
    assert decision["promote"] is True and decision["drift"] == 0.0
    assert "no production model" in decision["reasons"][0]


def test_the_same_window_decides_not_the_numbers_recorded_at_each_training() -> None:
    # Given a candidate whose own window scores 0.10 (a harder window) but beats production on it
    better = candidate(0.10, same_window(0.31, 0.30))
    decision = decide(better, pointer())
    # Then it is promoted on the same-window evidence, with the numbers in the reasons
    assert decision["promote"] is True and decision["evidence"] == "same window"
    assert "0.3100" in decision["reasons"][0] and "0.3000" in decision["reasons"][0]
    assert decision["drift"] == 0.0  # an improvement uses no budget


def test_slightly_worse_spends_the_budget_and_worse_beyond_it_is_refused() -> None:
    assert decide(candidate(gate=same_window(0.285, 0.30)), pointer(), tolerance=0.02)["promote"] is True
    refused = decide(candidate(gate=same_window(0.25, 0.30)), pointer(), tolerance=0.02)
    assert refused["promote"] is False and "exceeds" in refused["reasons"][-1]
    # And a budget already partly used leaves less room
    assert decide(candidate(gate=same_window(0.29, 0.30)), pointer(drift=0.015))["promote"] is False
    # And a better model pays the budget back
    assert decide(candidate(gate=same_window(0.33, 0.30)), pointer(drift=0.015))["drift"] == 0.0


def test_without_same_window_evidence_a_candidate_is_refused() -> None:
    # Given a production model and a candidate the job did not score against it
    assert decide(candidate(0.9), pointer())["promote"] is False
    # Or scored against a model that is no longer production
    stale = decide(candidate(gate=same_window(0.4, 0.3, version="v0")), pointer("v1"))
    assert stale["promote"] is False and stale["evidence"] == "stale"


def test_production_not_scorable_promotes_and_says_why() -> None:
    gate = {"scored": False, "model_version": "v1", "users": 3, "reason": "3 shoppers active"}
    decision = decide(candidate(gate=gate), pointer(drift=0.01))
    assert decision["promote"] is True and decision["drift"] == 0.01
    assert "3 shoppers active" in decision["reasons"][0]


def test_other_metric_and_missing_metric() -> None:
    production = pointer()
    assert decide({"models": {}}, production)["promote"] is False
    assert decide(candidate(gate=same_window(0.3, 0.3)), production, metric="recall@20")["promote"] is False
