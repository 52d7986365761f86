"""Quality gate: promote unless the candidate is worse than production beyond the tolerance."""

from __future__ import annotations

from merchandiser.publishing import decide


def evaluation(ndcg: float) -> dict:
    return {"models": {"popularity": {"ndcg@10": 0.1}, "pipeline": {"ndcg@10": ndcg}}}


def manifest(ndcg: float) -> dict:
    return {"model_version": "v1", "metrics": {"pipeline": {"ndcg@10": ndcg}}}


def test_first_model_is_promoted() -> None:
    # Given no production model / When deciding / Then promote
    decision = decide(evaluation(0.2), None)
    assert decision["promote"] is True
    assert "no production model" in decision["reasons"][0]


def test_better_or_slightly_worse_is_promoted() -> None:
    assert decide(evaluation(0.31), manifest(0.30))["promote"] is True
    assert decide(evaluation(0.285), manifest(0.30), tolerance=0.02)["promote"] is True


def test_worse_beyond_tolerance_is_refused() -> None:
    # Given a candidate 0.05 below production with tolerance 0.02 / Then refused, with the numbers
    decision = decide(evaluation(0.25), manifest(0.30), tolerance=0.02)
    assert decision["promote"] is False
    assert "0.2500" in decision["reasons"][0] and "0.3000" in decision["reasons"][0]


def test_other_metric_and_missing_metric() -> None:
    candidate = {"models": {"pipeline": {"ndcg@10": 0.3, "recall@20": 0.1}}}
    production = {"metrics": {"pipeline": {"ndcg@10": 0.3, "recall@20": 0.4}}}
    assert decide(candidate, production, metric="recall@20")["promote"] is False
    assert decide({"models": {}}, production)["promote"] is False
    assert decide(candidate, {"model_version": "old"})["promote"] is True
