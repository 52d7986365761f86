"""Position bias on logged pages with a known truth: the shoppers examine position k with 1/sqrt(1 + k)
(the simulator's curve) and click an examined item with its true relevance; 4,000 pages of 1,400 shoppers
as the issue asks, simulated in process (``local_twin.simulation.logged_pages``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from local_twin.simulation.logged_pages import FEATURES, LoggedPages, LoggedPagesConfig, simulate_logged_pages
from training.click_ranker import MODES, ClickLists, choose_click_ranker, fit_click_ranker
from training.counterfactual import counterfactual_ctr, positions_by_score
from training.metrics import page_ndcg
from training.position_bias import MIN_POSITIONS, PropensityEstimate, estimate_propensities

PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 50,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "seed": 7,
    "verbosity": -1,
}
ROUNDS = 50


@pytest.fixture(scope="module")
def logs() -> LoggedPages:
    return simulate_logged_pages(LoggedPagesConfig(shoppers=1400, pages=4000, seed=7))


@pytest.fixture(scope="module")
def estimate(logs: LoggedPages) -> PropensityEstimate:
    return estimate_propensities(logs.shown)


def test_the_simulated_log_has_the_issues_sizes(logs: LoggedPages) -> None:
    # Given the simulated log / Then 4,000 pages of at most 1,400 shoppers, with swapped pages among them
    assert logs.shown["page"].nunique() == 4000
    assert 1000 < logs.shown["user_id"].nunique() <= 1400
    swapped_pages = logs.shown.loc[logs.shown["swapped"], "page"].nunique()
    assert 100 < swapped_pages < 300  # about 5%


def test_propensities_recover_the_examination_curve(logs: LoggedPages, estimate: PropensityEstimate) -> None:
    # Given clicks that follow 1/sqrt(1 + k) / When estimating from the log alone
    truth = logs.behaviour.examination(np.arange(MIN_POSITIONS))
    found = np.asarray(estimate.propensities)
    # Then a list of at least 20 entries relative to position 0, within 35% at positions 1..5
    assert len(found) >= MIN_POSITIONS and found[0] == 1.0
    relative_error = np.abs(found[1:6] / truth[1:6] - 1)
    assert relative_error.max() < 0.35, relative_error
    # and the positions past the pages' end come from the fitted tail: falling, never zero
    assert estimate.estimated == 10
    assert np.all(np.diff(found[estimate.estimated - 1 :]) <= 0) and found[-1] > 0


def test_the_regression_em_recovers_the_curve_from_the_items_features(logs: LoggedPages) -> None:
    # Given the shown items' features (what the logging policies ranked by, plus noise)
    features = logs.shown[list(FEATURES)].to_numpy(np.float32)
    # When the regression EM explains the clicks by position x attractiveness(features)
    estimate = estimate_propensities(logs.shown, features)
    # Then it finds the curve within 35% at positions 1..5 too, and says which method it used
    truth = logs.behaviour.examination(np.arange(MIN_POSITIONS))
    relative_error = np.abs(np.asarray(estimate.propensities[1:6]) / truth[1:6] - 1)
    assert estimate.method.startswith("regression EM") and relative_error.max() < 0.35, relative_error


def test_the_regression_em_is_not_fooled_by_pages_that_follow_clicks() -> None:
    # Given a shopper's later pages that leave out what they clicked (as serving's home page does): only
    # unclicked items are shown again, so harvesting sees no click at the first showing of a repeated item
    logs = simulate_logged_pages(LoggedPagesConfig(seed=5))
    shown = logs.shown.sort_values(["page", "position"], kind="stable")
    clicked_before = shown.groupby(["user_id", "item_id"])["clicked"].transform(
        lambda clicks: clicks.shift(fill_value=False).cummax()
    )
    censored = shown[~clicked_before.astype(bool)].reset_index(drop=True)
    truth = logs.behaviour.examination(np.arange(6))
    # When both estimators read the censored log / Then the regression EM stays within 35% at 1..5
    em = estimate_propensities(censored, censored[list(FEATURES)].to_numpy(np.float32))
    assert np.abs(np.asarray(em.propensities[1:6]) / truth[1:6] - 1).max() < 0.35, em.propensities[:6]


def test_a_flat_curve_is_found_flat() -> None:
    # Given shoppers who look at every position alike / Then no position is found much less examined
    logs = simulate_logged_pages(LoggedPagesConfig(shoppers=1400, pages=4000, curve="flat", seed=3))
    found = np.asarray(estimate_propensities(logs.shown).propensities)
    assert np.abs(found[1:6] - 1).max() < 0.35


def test_without_clicks_or_pairs_nothing_is_corrected() -> None:
    # Given pages without a click, or no item ever shown twice / Then the flat estimate, said so
    shown = pd.DataFrame(
        {"page": [0, 0, 1, 1], "query": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "y"],
         "position": [0, 1, 0, 1], "clicked": [False] * 4}
    )  # fmt: skip
    for frame in (shown, shown.assign(clicked=[True, False, True, False])):
        estimate = estimate_propensities(frame)
        assert estimate.propensities == [1.0] * MIN_POSITIONS
        assert estimate.estimated == 0 and estimate.method.startswith("none")


def test_the_swaps_ratio_estimator_reads_the_swapped_items(
    logs: LoggedPages, estimate: PropensityEstimate
) -> None:
    # Given the log's randomized swaps / Then a ratio per swapped pair of adjacent positions, from their items
    assert set(estimate.swap_ratios) <= set(range(9)) and len(estimate.swap_ratios) >= 5
    assert all(entry["swapped_items"] > 0 for entry in estimate.swap_ratios.values())


def test_the_unbiased_ranker_beats_the_naive_one_on_true_relevance(
    logs: LoggedPages, estimate: PropensityEstimate
) -> None:
    # Given the pages as lists (shown and not clicked = negatives, with their positions), a fifth held out
    shown = logs.shown
    lists = ClickLists(
        shown[list(FEATURES)].to_numpy(np.float32),
        shown["clicked"].to_numpy(np.float32),
        shown["position"].to_numpy(np.int64),
        shown.groupby("page", sort=False).size().tolist(),
    )
    held = np.arange(len(lists)) % 5 == 0
    held_out = lists.pages(held)
    relevance = shown["relevance"].to_numpy()[np.repeat(held, lists.groups)]
    truth = ClickLists(held_out.features, relevance, held_out.positions, held_out.groups)
    # When the debiased fits are compared on the held-out pages' clicks and the better kept
    kept, info = choose_click_ranker(lists.pages(~held), held_out, estimate, list(FEATURES), PARAMS, ROUNDS)
    naive = fit_click_ranker(
        lists.pages(~held).with_clicks(), "naive", estimate, list(FEATURES), PARAMS, ROUNDS
    )
    # Then the kept one orders the held-out pages closer to their true relevance than the naive one
    # (both better than the logged order); the truth is the simulator's, which no fit saw
    unbiased_ndcg = page_ndcg(truth.labels, truth.groups, np.asarray(kept.predict(truth.features)))
    naive_ndcg = page_ndcg(truth.labels, truth.groups, np.asarray(naive.predict(truth.features)))
    logged_ndcg = page_ndcg(truth.labels, truth.groups, -truth.positions.astype(np.float64))
    assert info["kept"] in ("position", "ips") and set(info["held_out_ips_ndcg@10"]) == set(MODES)
    assert unbiased_ndcg > naive_ndcg + 0.003 > logged_ndcg, (unbiased_ndcg, naive_ndcg, logged_ndcg, info)


def test_an_unknown_mode_is_refused(estimate: PropensityEstimate) -> None:
    lists = ClickLists(np.zeros((2, 1), np.float32), np.array([1.0, 0.0], np.float32), np.arange(2), [2])
    with pytest.raises(ValueError, match="unknown mode"):
        fit_click_ranker(lists, "clairvoyant", estimate, ["f"], PARAMS, 1)


def true_ctr(logs: LoggedPages, positions: np.ndarray) -> float:
    """The expected clicks per shown item had the pages been in this order: examination x relevance."""
    return float(np.mean(logs.behaviour.examination(positions) * logs.shown["relevance"].to_numpy()))


def test_the_counterfactual_ctr_of_a_better_policy(logs: LoggedPages, estimate: PropensityEstimate) -> None:
    # Given a policy known to be better (each page in the order of true relevance)
    better = positions_by_score(logs.shown, logs.shown["relevance"].to_numpy())
    # When its CTR is estimated on the logged impressions
    result = counterfactual_ctr(logs.shown, better, estimate)
    # Then higher than the logged CTR, with the true CTR of that policy inside the interval
    assert result["estimator"] == "ips-pbm" and result["impressions"] == 4000
    assert result["estimated_ctr"] > result["logged_ctr"]
    assert result["ci_low"] > result["logged_ctr"]
    assert result["ci_low"] <= true_ctr(logs, better) <= result["ci_high"]


def test_the_counterfactual_ctr_of_a_worse_policy_and_of_the_logged_one(
    logs: LoggedPages, estimate: PropensityEstimate
) -> None:
    worse = positions_by_score(logs.shown, -logs.shown["relevance"].to_numpy())
    result = counterfactual_ctr(logs.shown, worse, estimate)
    assert result["ci_high"] < result["logged_ctr"]
    assert result["ci_low"] <= true_ctr(logs, worse) <= result["ci_high"]
    same = counterfactual_ctr(logs.shown, logs.shown["position"].to_numpy(), estimate)
    assert same["estimated_ctr"] == pytest.approx(same["logged_ctr"])


def test_no_impressions_no_estimate(estimate: PropensityEstimate) -> None:
    empty = pd.DataFrame({"page": [], "position": [], "clicked": []})
    result = counterfactual_ctr(empty, np.empty(0, np.int64), estimate)
    assert result["impressions"] == 0 and result["estimated_ctr"] is None and result["ci_low"] is None


def test_positions_by_score_sorts_within_each_page() -> None:
    shown = pd.DataFrame({"page": ["a", "a", "a", "b", "b"], "position": [0, 1, 2, 0, 1]})
    assert positions_by_score(shown, np.array([0.1, 0.9, 0.5, 1.0, 1.0])).tolist() == [2, 0, 1, 0, 1]
