"""The quality gate with the counterfactual estimate: it decides once it rests on enough impressions, the
same-window comparison otherwise, and the decision says which evidence decided."""

from __future__ import annotations

from typing import Any

from merchandiser.publishing import decide

PRODUCTION = {"model_version": "v1", "gate": {"drift": 0.005}, "manifest": {"model_version": "v1"}}


def candidate(
    same_window: tuple[float, float], impressions: int, estimated: float, low: float, high: float
) -> dict[str, Any]:
    """A manifest scored against production v1 on its window (candidate, production ndcg@10), with a
    counterfactual estimate against a logged CTR of 0.10."""
    own, production = same_window
    return {
        "model_version": "new",
        "metrics": {"pipeline": {"ndcg@10": own}},
        "gate": {"scored": True, "model_version": "v1", "candidate": own, "production": production,
                 "users": 400, "window_start": "a", "window_end": "b"},
        "counterfactual": {"estimator": "ips-pbm", "impressions": impressions, "logged_ctr": 0.10,
                           "estimated_ctr": estimated, "ci_low": low, "ci_high": high},
    }  # fmt: skip


def test_enough_impressions_and_not_worse_promotes_on_the_counterfactual() -> None:
    # Given 5,000 pages and an interval above production's logged CTR; offline a loss beyond the budget
    decision = decide(candidate((0.27, 0.30), 5000, 0.12, 0.11, 0.13), PRODUCTION, min_impressions=1000)
    # Then promoted, and the counterfactual is what decided; the same-window figures are still reported
    assert decision["promote"] is True and decision["evidence"] == "counterfactual"
    assert "0.1200" in decision["reasons"][0]
    assert decision["reasons"][1].startswith("offline (same window): ")
    assert decision["drift"] == 0.005  # the offline refusal spent no budget: production's drift carries on


def test_enough_impressions_and_worse_refuses_even_when_offline_passes() -> None:
    decision = decide(candidate((0.31, 0.30), 5000, 0.08, 0.07, 0.09), PRODUCTION, min_impressions=1000)
    assert decision["promote"] is False and decision["evidence"] == "counterfactual"
    assert decision["reasons"][0].endswith("worse")


def test_an_interval_reaching_the_logged_ctr_is_not_measurably_worse() -> None:
    decision = decide(candidate((0.30, 0.30), 5000, 0.095, 0.09, 0.101), PRODUCTION, min_impressions=1000)
    assert decision["promote"] is True and decision["evidence"] == "counterfactual"


def test_too_few_impressions_leave_the_same_window_to_decide() -> None:
    # Given a bad counterfactual on 500 pages, under a threshold of 1,000 / Then the same window decides
    decision = decide(candidate((0.31, 0.30), 500, 0.05, 0.01, 0.06), PRODUCTION, min_impressions=1000)
    assert decision["promote"] is True and decision["evidence"] == "same window"
    # and the threshold is the caller's
    lower = decide(candidate((0.31, 0.30), 500, 0.05, 0.01, 0.06), PRODUCTION, min_impressions=400)
    assert lower["promote"] is False and lower["evidence"] == "counterfactual"


def test_a_counterfactual_without_figures_or_without_production_does_not_decide() -> None:
    empty = candidate((0.31, 0.30), 0, 0.0, 0.0, 0.0)
    empty["counterfactual"].update(logged_ctr=None, estimated_ctr=None, ci_low=None, ci_high=None)
    assert decide(empty, PRODUCTION, min_impressions=0)["evidence"] == "same window"
    first = decide(candidate((0.31, 0.30), 5000, 0.01, 0.0, 0.02), None)
    assert first["promote"] is True and first["evidence"] == "no production"


def test_a_candidate_without_its_metric_is_refused_whatever_the_counterfactual() -> None:
    unmeasured = candidate((0.3, 0.3), 5000, 0.2, 0.19, 0.21)
    unmeasured["metrics"] = {}
    decision = decide(unmeasured, PRODUCTION)
    assert decision["promote"] is False and decision["evidence"] == "none"
