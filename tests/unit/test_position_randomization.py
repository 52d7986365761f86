"""Serving's randomization that makes position bias measurable: one adjacent swap on a small share of pages,
drawn from the recommendation id, configurable per surface and recorded on the impression."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from merchandiser.reranking import adjacent_swap, swapped
from merchandiser.serving import impression_record
from merchandiser.settings import PositionRandomization, ServingSettings

ENV = {
    "USERS_TABLE": "u",
    "SESSIONS_TABLE": "s",
    "COUNTERS_TABLE": "c",
    "ITEMS_TABLE": "i",
    "EXPERIMENTS_TABLE": "e",
    "EVENTS_STREAM": "x",
}


def test_the_swap_is_a_function_of_the_recommendation_id() -> None:
    # Given the same page id twice / Then the same swap; a different share of ids swap as configured
    assert all(
        adjacent_swap(f"r-{n}", 10, 0.05, 20) == adjacent_swap(f"r-{n}", 10, 0.05, 20) for n in range(200)
    )
    draws = [adjacent_swap(f"r-{n}", 10, 0.05, 20) for n in range(20_000)]
    share = sum(draw is not None for draw in draws) / len(draws)
    assert 0.04 < share < 0.06
    # every adjacent pair of the page can be the one swapped, and the second item is always on the page
    assert {draw for draw in draws if draw is not None} == set(range(9))


def test_the_swap_stays_within_the_depth_and_the_page() -> None:
    draws = {adjacent_swap(f"r-{n}", 50, 1.0, 4) for n in range(2000)}
    assert draws == {0, 1, 2}
    assert {adjacent_swap(f"r-{n}", 3, 1.0, 20) for n in range(500)} == {0, 1}


def test_no_swap_when_off_or_nothing_to_swap() -> None:
    assert all(adjacent_swap(f"r-{n}", 10, 0.0, 20) is None for n in range(1000))
    assert all(adjacent_swap(f"r-{n}", 1, 1.0, 20) is None for n in range(100))
    assert all(adjacent_swap(f"r-{n}", 0, 1.0, 20) is None for n in range(100))


def test_swapped_exchanges_two_neighbours_in_a_copy() -> None:
    page = ["a", "b", "c", "d"]
    assert swapped(page, 2) == ["a", "b", "d", "c"] and page == ["a", "b", "c", "d"]
    assert swapped(page, None) == page


def test_the_impression_records_which_items_moved_and_from_where() -> None:
    # Given a page served with the items at 1 and 2 swapped
    page = {
        "recommendation_id": "r1", "user_id": "u1", "surface": "home", "variant": "production",
        "model_version": "m", "items": [{"item_id": i, "source": "ann"} for i in ("a", "c", "b", "d")],
    }  # fmt: skip
    record = impression_record(page, None, 0.0, swap=1)
    # Then the shown positions, and the ranker's on the two swapped items only
    assert [item["position"] for item in record["items"]] == [0, 1, 2, 3]
    assert [item["swapped"] for item in record["items"]] == [False, True, True, False]
    assert [item.get("ranked_position") for item in record["items"]] == [None, 2, 1, None]


def test_the_setting_is_on_by_default_and_per_surface() -> None:
    # Given no setting / Then 5% of pages among the top 20, but never a caller's re-ranked list
    settings = ServingSettings.from_env(ENV)
    assert settings.position_randomization.share_for("home") == 0.05
    assert settings.position_randomization.depth == 20
    assert settings.position_randomization.share_for("rerank") == 0.0
    # Given a retailer's JSON / Then it is read, and written back as the function's environment
    chosen = ServingSettings.from_env(
        {**ENV, "POSITION_RANDOMIZATION": '{"share": 0.1, "depth": 10, "surfaces": {"similar": 0}}'}
    )
    assert chosen.position_randomization.share_for("home") == 0.1
    assert chosen.position_randomization.share_for("similar") == 0.0
    assert ServingSettings.from_env(chosen.to_env()).position_randomization == chosen.position_randomization


@pytest.mark.parametrize(
    "bad", ['{"share": 1.5}', '{"depth": 1}', '{"surfaces": {"home": -0.1}}', '{"shares": 0}']
)
def test_a_bad_setting_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        ServingSettings.from_env({**ENV, "POSITION_RANDOMIZATION": bad})
    assert PositionRandomization().share == 0.05
