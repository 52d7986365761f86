"""Assignment: sticky, following the shares, independent between experiments, one experiment a surface."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from scipy import stats

from merchandiser.experiments import SurfaceConflictError, assign, parse_experiment, variant_for
from merchandiser.experiments.assignment import assigned_variant, check_surfaces_free

USERS = [f"user-{n}" for n in range(100_000)]


def experiment(name: str, surfaces: list[str], shares: dict[str, float], **extra: Any):
    variants = [{"name": variant, "share": share} for variant, share in shares.items()]
    return parse_experiment({"name": name, "surfaces": surfaces, "variants": variants, **extra})


def test_the_serving_default_is_production_for_everyone():
    # recommend.py calls assign(user_id) with no experiment: every shopper is in production
    assert {assign(user) for user in USERS[:1000]} == {"production"}


def test_assignment_is_sticky_and_follows_the_shares_over_100k_users():
    # Given three variants of unequal shares
    variants = (("control", 0.2), ("a", 0.3), ("b", 0.5))
    # When 100k shoppers are assigned, twice
    first = [assign(user, "exp", variants) for user in USERS]
    again = [assign(user, "exp", variants) for user in USERS]
    # Then each lands where they landed before, and each share is met within 0.5 point (3 sigma)
    assert first == again
    counts = Counter(first)
    for name, share in variants:
        assert abs(counts[name] / len(USERS) - share) < 0.005, (name, counts[name])


def test_two_experiments_split_the_same_users_independently():
    # Given two experiments over the same 100k shoppers
    one = [assign(user, "one", (("a", 0.5), ("b", 0.5))) for user in USERS]
    two = [assign(user, "two", (("x", 0.3), ("y", 0.7))) for user in USERS]
    # When their joint assignment is tabulated
    table = np.zeros((2, 2))
    for left, right in zip(one, two, strict=True):
        table[left == "b", right == "y"] += 1
    # Then a chi-square test finds no dependence
    assert stats.chi2_contingency(table).pvalue > 0.001
    # and the same experiment under another name reshuffles shoppers (renaming is a new experiment)
    renamed = [assign(user, "one-v2", (("a", 0.5), ("b", 0.5))) for user in USERS[:4000]]
    agreement = np.mean([x == y for x, y in zip(one[:4000], renamed, strict=True)])
    assert 0.46 < agreement < 0.54


def test_changing_shares_moves_only_the_users_near_the_boundary():
    before = [assign(user, "ramp", (("new", 0.1), ("old", 0.9))) for user in USERS[:20_000]]
    after = [assign(user, "ramp", (("new", 0.2), ("old", 0.8))) for user in USERS[:20_000]]
    # everyone in "new" stays there: ramping up never bounces a shopper between variants
    assert all(b == "new" for a, b in zip(before, after, strict=True) if a == "new")


def test_an_assignment_without_variants_is_refused():
    with pytest.raises(ValueError, match="at least one variant"):
        assign("u", "exp", ())
    with pytest.raises(ValueError, match="at least one variant"):
        assign("u", "exp", (("a", 0.0),))


def test_variant_for_picks_the_experiment_covering_the_surface():
    # Given one experiment on home and category, another on similar, and a stopped one on rank
    home = experiment("home-test", ["home", "category"], {"personalized": 0.5, "holdout": 0.5})
    similar = experiment("similar-test", ["similar"], {"only": 1.0})
    stopped = experiment("rank-test", ["rank"], {"only": 1.0}, status="stopped")
    running = [home, similar, stopped]
    # When shoppers ask for pages
    # Then a covered surface names its experiment and the shopper's sticky variant
    assert variant_for(running, "home", "u1") == ("home-test", assign("u1", "home-test", home_shares()))
    assert variant_for(running, "category", "u1") == variant_for(running, "home", "u1")
    assert variant_for(running, "similar", "u1") == ("similar-test", "only")
    # and an uncovered surface, a stopped experiment or a request without a shopper is production
    assert variant_for(running, "popular", "u1") == ("", "production")
    assert variant_for(running, "rank", "u1") == ("", "production")
    assert variant_for(running, "home", None) == ("", "production")
    assert variant_for([], "home", "u1") == ("", "production")
    # and the variant's definition comes with it for serving
    assigned = assigned_variant(running, "similar", "u1")
    assert assigned is not None and assigned[0] is similar and assigned[1].name == "only"


def home_shares() -> tuple[tuple[str, float], ...]:
    return (("personalized", 0.5), ("holdout", 0.5))


def test_a_second_running_experiment_on_a_surface_is_refused_by_name():
    # Given an experiment running on home and category
    running = [experiment("home-test", ["home", "category"], {"a": 1.0})]
    # When another asks for category and similar
    clash = experiment("other", ["similar", "category"], {"b": 1.0})
    # Then it is refused, naming the running experiment and the shared surface
    with pytest.raises(SurfaceConflictError, match="'home-test' is already running on category"):
        check_surfaces_free(running, clash)
    # but an update of the same experiment, a stopped candidate or a stopped incumbent is no conflict
    check_surfaces_free(running, experiment("home-test", ["home"], {"a": 0.5, "b": 0.5}))
    check_surfaces_free(running, experiment("other", ["category"], {"b": 1.0}, status="stopped"))
    check_surfaces_free(
        [experiment("home-test", ["category"], {"a": 1.0}, status="stopped")],
        experiment("other", ["category"], {"b": 1.0}),
    )


def test_two_running_experiments_written_around_the_check_resolve_the_same_way_everywhere():
    # Given a table holding two running experiments on one surface (written around the check)
    first = experiment("aaa", ["home"], {"x": 1.0})
    second = experiment("bbb", ["home"], {"y": 1.0})
    # Then every container picks the first by name, whatever the order it read them in
    assert (
        variant_for([second, first], "home", "u1")
        == variant_for([first, second], "home", "u1")
        == ("aaa", "x")
    )
