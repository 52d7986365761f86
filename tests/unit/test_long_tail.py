"""The long-tail correction of the page (``merchandiser.reranking.popularity``) and the training job's choice
of its strength (``training.tuning.long_tail``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from merchandiser.reranking import (
    LONG_TAIL,
    MAX_STRENGTH,
    anchor_blend,
    check_strength,
    long_tail_correct,
    long_tail_scores,
    page_scores,
    ranked_order,
    strength_of,
)
from merchandiser.retrieval import Candidates
from tests.unit.test_source_contract import shopper, tiny_shop
from training.tuning.long_tail import MAX_NDCG_DROP, anchor_floor, choose_strength, off

# the tiny shop's popularity: item 5 is the best seller (10), item 8 is in the tail (2), item 0 has 9
BEST_SELLER, TAIL_ITEM, FAR_ITEM = 5, 8, 0


def candidates_of(rows: list[int]) -> Candidates:
    return Candidates(rows=np.array(rows, dtype=np.int64), scores={}, sources=["ann"] * len(rows))


def order(strength: float) -> list[int]:
    items = tiny_shop()
    found = candidates_of([BEST_SELLER, TAIL_ITEM, FAR_ITEM])
    # the ranker barely prefers the best seller to the tail item, and is sure item 0 comes last
    ranker = np.array([1.0, 0.95, 0.0])
    corrected = long_tail_scores(items, found, ranker, strength)
    return found.rows[ranked_order(items, found, corrected)].tolist()


def test_a_tail_item_close_to_a_best_seller_passes_it_at_a_strength_and_not_at_zero() -> None:
    # Given a best seller and a tail item the ranker scores close together, and a popular item far below
    # When the page's scores are corrected with no strength, then with 0.1
    # Then without correction the ranker's order stands
    assert order(0.0) == [BEST_SELLER, TAIL_ITEM, FAR_ITEM]
    # And with 0.1 the tail item passes the best seller, while the far item stays last: the ranker's margin
    # over it is larger than popularity's pull
    assert order(0.1) == [TAIL_ITEM, BEST_SELLER, FAR_ITEM]
    # And a strength too small for the gap changes nothing
    assert order(0.02) == [BEST_SELLER, TAIL_ITEM, FAR_ITEM]


def test_strength_zero_returns_the_scores_as_they_are() -> None:
    items = tiny_shop()
    found = candidates_of([1, 3, 6])
    scores = np.array([4.0, 3.0, 2.0])
    np.testing.assert_array_equal(long_tail_scores(items, found, scores, 0.0), scores)


def test_the_correction_does_not_depend_on_the_scale_of_the_scores() -> None:
    # Given the same page's scores in two scales (a ranker's margins and a reciprocal-rank blend's)
    items = tiny_shop()
    found = candidates_of([BEST_SELLER, TAIL_ITEM, FAR_ITEM, 3])
    scores = np.array([2.0, 1.9, -3.0, 0.5])
    # When both are corrected with the same strength / Then they order the page alike
    small = long_tail_scores(items, found, scores / 1000.0 + 7.0, 0.3)
    np.testing.assert_allclose(long_tail_scores(items, found, scores, 0.3), small)


def test_equal_scores_and_an_empty_page_stay_usable() -> None:
    items = tiny_shop()
    # Given a page whose scores are all equal / Then only popularity orders it: the tail first
    found = candidates_of([BEST_SELLER, TAIL_ITEM])
    corrected = long_tail_scores(items, found, np.array([1.0, 1.0]), 0.5)
    assert found.rows[ranked_order(items, found, corrected)].tolist() == [TAIL_ITEM, BEST_SELLER]
    # And an empty page stays empty
    assert len(long_tail_scores(items, candidates_of([]), np.empty(0), 0.5)) == 0


@pytest.mark.parametrize("strength", [-0.1, math.nan, math.inf, MAX_STRENGTH + 0.1])
def test_a_bad_strength_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match="strength"):
        check_strength(strength)
    with pytest.raises(ValueError, match="strength"):
        long_tail_scores(tiny_shop(), candidates_of([1]), np.array([1.0]), strength)


def test_the_model_serves_its_manifests_strength_and_none_when_unusable() -> None:
    items = tiny_shop()
    found = candidates_of([BEST_SELLER, TAIL_ITEM, FAR_ITEM])
    ranker = np.array([1.0, 0.95, 0.0])
    # Given a model without the record (older models) / Then the page keeps the ranker's scores
    assert strength_of(items) == 0.0
    np.testing.assert_array_equal(long_tail_correct(items, found, ranker), ranker)
    # Given the strength its training chose / Then the page is corrected with it
    items.manifest[LONG_TAIL] = {"engaged": True, "strength": 0.1}
    np.testing.assert_allclose(
        long_tail_correct(items, found, ranker), long_tail_scores(items, found, ranker, 0.1)
    )
    # Given a manifest whose strength is unusable / Then the page is served uncorrected, never fails
    for bad in (-1.0, "lots", None, math.nan):
        items.manifest[LONG_TAIL] = {"engaged": True, "strength": bad}
        assert strength_of(items) == 0.0
        np.testing.assert_array_equal(long_tail_correct(items, found, ranker), ranker)


def test_the_page_scores_blend_the_fallback_then_correct_for_popularity() -> None:
    # Given a model with an engaged fallback to trending and a long-tail strength
    items = tiny_shop()
    found = candidates_of([1, 3, 6, 8])
    ranker = np.array([4.0, 3.0, 2.0, 1.0])
    items.manifest["fallback_to_anchor"] = {"engaged": True, "anchor": "trending", "weight": 0.5}
    items.manifest[LONG_TAIL] = {"engaged": True, "strength": 0.3}
    # When the page's scores are built / Then they are the correction of the fallback's blend
    blended = anchor_blend(items, found, ranker, shopper())
    np.testing.assert_allclose(
        page_scores(items, found, ranker, shopper()), long_tail_scores(items, found, blended, 0.3)
    )


def figures(*rows: tuple[float, float, float, float]) -> dict[float, dict[str, float]]:
    return {s: {"ndcg@10": n, "coverage@20": c, "long_tail@20": t} for s, n, c, t in rows}


def test_the_job_keeps_the_largest_strength_within_the_drop_that_widens_the_page() -> None:
    # Given validation figures: 0.1 and 0.2 cost less than 2%, 0.3 costs 3%; each widens the page
    measured = figures(
        (0.0, 0.100, 0.40, 0.20),
        (0.1, 0.0995, 0.42, 0.24),
        (0.2, 0.0981, 0.45, 0.28),
        (0.3, 0.0970, 0.50, 0.33),
    )
    # When the job chooses / Then it keeps 0.2, records every strength's figures and why
    record = choose_strength(measured)
    assert record["strength"] == 0.2 and record["engaged"] is True
    assert set(record["validation"]) == {"0.0", "0.1", "0.2", "0.3"}
    assert record["validation"]["0.2"]["coverage@20"] == 0.45
    assert "0.2" in record["reason"] and record["max_ndcg_drop"] == MAX_NDCG_DROP


def test_the_job_keeps_zero_when_every_strength_costs_more_than_the_drop() -> None:
    measured = figures((0.0, 0.100, 0.40, 0.20), (0.1, 0.097, 0.45, 0.25), (0.2, 0.090, 0.50, 0.30))
    record = choose_strength(measured)
    assert record["strength"] == 0.0 and record["engaged"] is False
    assert "no strength" in record["reason"]


def test_a_strength_that_narrows_coverage_or_the_tail_is_not_kept() -> None:
    # Given a strength within the drop that raises the tail but narrows coverage (the ranker weighting's
    # case), and one that widens coverage without raising the tail
    measured = figures((0.0, 0.100, 0.40, 0.20), (0.1, 0.099, 0.39, 0.24), (0.2, 0.099, 0.42, 0.20))
    # Then neither is kept
    assert choose_strength(measured)["strength"] == 0.0


def test_figures_without_the_uncorrected_page_or_with_a_bad_strength_are_refused() -> None:
    with pytest.raises(ValueError, match="strength 0"):
        choose_strength(figures((0.1, 0.1, 0.4, 0.2)))
    with pytest.raises(ValueError, match="strength"):
        choose_strength(figures((0.0, 0.1, 0.4, 0.2), (-0.5, 0.1, 0.5, 0.3)))


def test_a_job_without_tuning_records_no_correction_and_why() -> None:
    record = off("no validation tuning")
    assert record["strength"] == 0.0 and record["engaged"] is False and record["reason"]


def test_no_strength_takes_the_page_below_the_best_tuned_anchor() -> None:
    # Given a page served at 0.100 on validation, the best anchor at 0.099, and strengths within 2% of none
    measured = figures((0.0, 0.100, 0.40, 0.20), (0.1, 0.0992, 0.42, 0.24), (0.2, 0.0985, 0.45, 0.28))
    # When the job chooses with the anchor as the floor / Then it keeps the strength that stays above it
    record = choose_strength(measured, floor=0.099)
    assert record["strength"] == 0.1 and record["anchor_floor"] == 0.099
    # And none when every strength falls below the anchor, saying so
    record = choose_strength(measured, floor=0.0995)
    assert record["strength"] == 0.0 and "best tuned anchor's (0.0995)" in record["reason"]
    # And the floor is the best anchor of the fallback record (its options and the page's own left out)
    validation = {"pipeline": 0.2, "rp3beta": 0.1, "pop_recent": 0.05, "options": {"list alone": 0.3}}
    assert anchor_floor({"validation": validation}) == 0.1 and anchor_floor({}) == 0.0
