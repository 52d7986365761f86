"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008): two rankers share one page.

Like picking teams in a playground: in each round a coin decides which ranker picks first, then each
ranker adds its best item not yet on the page, and the item plays for that ranker's team. A click on
an item credits its team; over many pages, the ranker whose team draws more clicks is preferred by
shoppers. Each shopper judges both rankers on the same page, so a ranker difference shows with far
fewer users than an A/B split needs.

Deterministic: the coins come from a seed the caller derives from the request (e.g. its
recommendation id), so the same seed gives the same page. The report credits teams from the
impression's ``interleaving`` list (one team per item, in page order) and attributed clicks.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Team = Literal["A", "B"]
TEAM_A: Team = "A"
TEAM_B: Team = "B"


@dataclass(frozen=True)
class InterleavedPage:
    items: tuple[str, ...]
    teams: tuple[Team, ...]  # teams[i] is credited for a click on items[i]


def seeded_coins(seed: str) -> Iterator[bool]:
    """An endless, reproducible stream of fair coins (True: team A picks first in the round)."""
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    while True:
        yield rng.random() < 0.5


def team_draft(ranking_a: Sequence[str], ranking_b: Sequence[str], k: int, seed: str) -> InterleavedPage:
    """Interleaves two rankings into a page of at most ``k`` distinct items, seeded by ``seed``."""
    return team_draft_with_coins(ranking_a, ranking_b, k, seeded_coins(seed))


def team_draft_with_coins(
    ranking_a: Sequence[str], ranking_b: Sequence[str], k: int, coins: Iterable[bool]
) -> InterleavedPage:
    """The same with the coins given: a known-answer test chooses them.

    The team with fewer picks picks next; on a tie a coin decides. A team whose ranking has no item
    left that is not already on the page stops picking and the other fills the page.
    """
    if k < 0:
        raise ValueError(f"k must not be negative, got {k}")
    coin = iter(coins)
    items: list[str] = []
    teams: list[Team] = []
    on_page: set[str] = set()
    cursor = {TEAM_A: 0, TEAM_B: 0}
    rankings = {TEAM_A: ranking_a, TEAM_B: ranking_b}
    picks = {TEAM_A: 0, TEAM_B: 0}

    def next_item(team: Team) -> str | None:
        ranking = rankings[team]
        while cursor[team] < len(ranking) and ranking[cursor[team]] in on_page:
            cursor[team] += 1
        return ranking[cursor[team]] if cursor[team] < len(ranking) else None

    while len(items) < k:
        candidates = {team: next_item(team) for team in (TEAM_A, TEAM_B)}
        available = [team for team in (TEAM_A, TEAM_B) if candidates[team] is not None]
        if not available:
            break
        if len(available) == 1:
            team = available[0]
        elif picks[TEAM_A] != picks[TEAM_B]:
            team = TEAM_A if picks[TEAM_A] < picks[TEAM_B] else TEAM_B
        else:
            team = TEAM_A if next(coin) else TEAM_B
        item = candidates[team]
        assert item is not None  # chosen among the available teams
        items.append(item)
        teams.append(team)
        on_page.add(item)
        picks[team] += 1
    return InterleavedPage(tuple(items), tuple(teams))


def credit(teams: Sequence[str], clicked_positions: Iterable[int]) -> tuple[int, int]:
    """Clicks credited to team A and team B on one page (0-based positions of the clicked items)."""
    a = b = 0
    for position in clicked_positions:
        if 0 <= position < len(teams):
            if teams[position] == TEAM_A:
                a += 1
            elif teams[position] == TEAM_B:
                b += 1
    return a, b


def outcome(clicks_a: int, clicks_b: int) -> Team | Literal["tie"] | None:
    """Who wins one page: the team with more credited clicks; None when nobody clicked."""
    if clicks_a == clicks_b:
        return None if clicks_a == 0 else "tie"
    return TEAM_A if clicks_a > clicks_b else TEAM_B
