"""Learning from what the twin showed: simulated shoppers browse the twin (their clicks follow the
simulator's examination curve), then the scheduled training path (start_training λ, the job with the
archive's ``impressions`` channel, publish λ) estimates the position propensities and the candidate's
counterfactual CTR, and the gate says which evidence decided.

The module name sorts after the other twin tests: it retrains the package's twin."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from local_twin.simulation.browsing import SimulationConfig
from local_twin.simulation.client import TwinHttpApi
from local_twin.simulation.truth import truth_for_data
from local_twin.simulator import simulate
from local_twin.twin import Twin
from training.position_bias import MIN_POSITIONS

pytestmark = pytest.mark.slow

SHOPPERS, SEED = 200, 5
# the shop's events end on 2026-02-10 (conftest: 40 days from 2026-01-01): the shoppers come right after
START = datetime(2026, 2, 10, 12, tzinfo=UTC)


def test_retraining_on_what_the_twin_gathered_estimates_position_bias(twin: Twin) -> None:
    # Given shoppers who browsed the twin's pages (each page one impression in the archive)
    state = twin.state()
    api = TwinHttpApi(state["api_url"], state.get("api_key"))
    config = SimulationConfig(shoppers=SHOPPERS, seed=SEED, start=START, max_seconds=900.0)
    result = simulate(api, truth_for_data(twin.workdir / "shop"), config)
    assert result.failures == [] and result.shoppers_done == SHOPPERS
    pages = len(result.impressions)
    twin.settle()
    # When the twin trains on what it gathered, the gate trusting the counterfactual from 100 pages on
    assert twin.functions is not None
    twin.functions.set_environment("publish", COUNTERFACTUAL_MIN_IMPRESSIONS="100")
    decision = twin.train_and_publish()
    evaluation = twin.evaluation
    figures = ("position_propensities", "counterfactual", "position_bias")
    # shown on failure:
    print(json.dumps({key: evaluation[key] for key in figures} | {"decision": decision}, indent=1))
    # Then evaluation.json carries the propensities, relative to position 0, from harvested interventions
    propensities = evaluation["position_propensities"]
    assert len(propensities) >= MIN_POSITIONS and propensities[0] == 1.0
    details = evaluation["position_bias"]
    assert details["harvested_pairs"] > 0 and details["estimated_positions"] >= 2
    assert details["pages"] >= pages
    assert min(propensities[1 : details["estimated_positions"]]) < 1.0  # shoppers look less further down
    # and the candidate's counterfactual CTR on the simulated pages, beside production's logged CTR
    counterfactual = evaluation["counterfactual"]
    assert counterfactual["estimator"] == "ips-pbm"
    # (the shared twin's archive also holds the pages earlier tests served: at least these shoppers' pages)
    assert counterfactual["impressions"] >= 100
    assert counterfactual["logged_ctr"] > 0
    assert counterfactual["ci_low"] <= counterfactual["estimated_ctr"] <= counterfactual["ci_high"]
    # and the published ranker learnt from the simulated pages too, debiased as the comparison chose
    comparison = details["click_ranker"]
    published = evaluation["ranker"]["published"]
    assert published["impression_pages"] > 0 and published["debiasing"] == comparison["used"]
    assert comparison["used"] in ("position", "ips")
    # and the gate decided on it
    assert decision["evidence"] == "counterfactual", decision
    assert "counterfactual CTR" in decision["reasons"][0]
