"""Team-draft interleaving on known lists, and the credit of clicks to teams."""

from __future__ import annotations

from collections import Counter

import pytest

from merchandiser.experiments.interleaving import (
    credit,
    outcome,
    seeded_coins,
    team_draft,
    team_draft_with_coins,
)


def test_known_lists_with_known_coins_give_the_known_page():
    # Given A ranks 1 2 3 4 and B ranks 3 1 5 6, and coins: A first, then B first
    a, b = ["1", "2", "3", "4"], ["3", "1", "5", "6"]
    # When four slots are drafted
    page = team_draft_with_coins(a, b, 4, [True, False])
    # Then round 1: A takes 1, B takes 3; round 2: B first takes 5 (its 1 is taken), A takes 2
    assert page.items == ("1", "3", "5", "2")
    assert page.teams == ("A", "B", "B", "A")


def test_the_team_with_fewer_picks_picks_next_and_coins_only_break_ties():
    # Given a page of odd length: after the coin, the other team must pick, with no coin drawn
    page = team_draft_with_coins(["a1", "a2", "a3"], ["b1", "b2", "b3"], 5, [False, True, True])
    assert page.items == ("b1", "a1", "a2", "b2", "a3")
    assert page.teams == ("B", "A", "A", "B", "A")


def test_one_exhausted_ranking_leaves_the_page_to_the_other():
    page = team_draft_with_coins(["x"], ["x", "y", "z"], 5, [True])
    assert page.items == ("x", "y", "z")
    assert page.teams == ("A", "B", "B")
    assert team_draft(["a"], ["b"], 0, "seed").items == ()
    assert team_draft([], [], 3, "seed").items == ()
    with pytest.raises(ValueError, match="k must not be negative"):
        team_draft(["a"], ["b"], -1, "seed")


def test_identical_rankings_give_the_same_page_whoever_picks():
    ranking = [f"i{n}" for n in range(10)]
    page = team_draft(ranking, ranking, 10, "request-1")
    assert list(page.items) == ranking
    assert abs(page.teams.count("A") - page.teams.count("B")) <= 1


def test_pages_are_deterministic_per_seed_fair_between_teams_and_draw_items_in_each_rankers_order():
    a = [f"i{n}" for n in range(30)]
    b = [f"i{n}" for n in (29, 3, 17, 8, 0, 21, 5, 12, 26, 1, 14, 9, 2, 11, 6, 19, 4, 23, 7, 28)]
    first_pickers = Counter()
    for n in range(2000):
        page = team_draft(a, b, 10, f"rec-{n}")
        # the same seed gives the same page
        assert page == team_draft(a, b, 10, f"rec-{n}")
        # each team's items appear in its ranker's order, no item twice, and the teams stay balanced
        assert len(set(page.items)) == 10
        for team, ranking in (("A", a), ("B", b)):
            picked = [item for item, t in zip(page.items, page.teams, strict=True) if t == team]
            assert picked == sorted(picked, key=ranking.index)
            assert len(picked) == 5
        first_pickers[page.teams[0]] += 1
    # the coin is fair: A picks first on about half the pages (3 sigma over 2000)
    assert abs(first_pickers["A"] / 2000 - 0.5) < 0.034


def test_seeded_coins_repeat_per_seed_and_differ_between_seeds():
    def draw(seed: str) -> list[bool]:
        coins = seeded_coins(seed)
        return [next(coins) for _ in range(64)]

    assert draw("s1") == draw("s1")
    assert draw("s1") != draw("s2")


def test_clicks_credit_the_team_of_the_clicked_position():
    teams = ("A", "B", "A", "B")
    assert credit(teams, [0, 2]) == (2, 0)
    assert credit(teams, [1, 2]) == (1, 1)
    assert credit(teams, [3, 9, -1]) == (0, 1)  # positions off the page credit nobody
    assert outcome(2, 0) == "A"
    assert outcome(0, 1) == "B"
    assert outcome(1, 1) == "tie"
    assert outcome(0, 0) is None
