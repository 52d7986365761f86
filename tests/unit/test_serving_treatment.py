"""The shopper's treatment: which experiment and variant a page serves, what each pin changes, the team
draft of an interleaving variant, and production whenever the experiments cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from merchandiser import retrieval
from merchandiser.experiments import Experiment, parse_experiment
from merchandiser.reranking import Scored
from merchandiser.serving import (
    EXPERIMENTS,
    PRODUCTION_TREATMENT,
    Arm,
    ServingReport,
    Treatment,
    interleave,
    load_model,
    treatment_for,
)
from merchandiser.settings import RetailerRules
from merchandiser.shopper import from_record
from merchandiser.store import ShopperRecord

SPLIT = parse_experiment(
    {
        "name": "home-split",
        "surfaces": ["home", "similar"],
        "variants": [
            {"name": "personalized", "share": 0.5, "rules": {"explore_share": 0.0}},
            {"name": "holdout", "share": 0.5, "policy": "trending"},
        ],
    }
)
MIXED = parse_experiment(
    {
        "name": "mixed",
        "surfaces": ["rank"],
        "variants": [
            {
                "name": "ab",
                "share": 1.0,
                "kind": "interleaving",
                "rankers": [{"name": "gbm"}, {"name": "als", "order": "als", "source_shares": {"ann": 1.0}}],
            }
        ],
    }
)


class Repository:
    """What serving asks of the experiments' repository: ``running()`` and a count of failed reads."""

    def __init__(self, experiments: tuple[Experiment, ...] = (), error: Exception | None = None):
        self.experiments, self.error, self.read_failures = experiments, error, 0

    def running(self) -> tuple[Experiment, ...]:
        if isinstance(self.error, ClientError):  # the repository keeps the last known ones
            self.read_failures += 1
            return self.experiments
        if self.error is not None:
            raise self.error
        return self.experiments


def resolve(repository: Any, surface: str, user_id: str | None) -> tuple[Treatment, ServingReport]:
    report = ServingReport()
    return treatment_for(repository, surface, user_id, report), report


def test_a_covered_surface_serves_the_shoppers_sticky_variant_and_another_surface_production() -> None:
    repository = Repository((SPLIT,))
    variants = {resolve(repository, "home", f"u{n}")[0].variant for n in range(40)}
    assert variants == {"personalized", "holdout"}
    first, _ = resolve(repository, "home", "u7")
    assert resolve(repository, "similar", "u7")[0] == first and first.experiment == "home-split"
    assert resolve(repository, "category", "u7")[0] == PRODUCTION_TREATMENT
    assert resolve(repository, "home", None)[0] == PRODUCTION_TREATMENT  # no shopper, no experiment


def test_each_variant_is_an_arm_with_its_pins_and_its_rules_over_the_retailers() -> None:
    holdout = Treatment("home-split", SPLIT.variant("holdout"))
    assert holdout.arms == (Arm(policy="trending"),)
    personalized = Treatment("home-split", SPLIT.variant("personalized"))
    assert personalized.arms == (Arm(),)
    rules = personalized.rules_over(RetailerRules(discovery_share=0.2))
    assert (rules.explore_share, rules.discovery_share) == (0.0, 0.2)
    assert PRODUCTION_TREATMENT.rules_over(RetailerRules()) == RetailerRules()
    (a, b) = Treatment("mixed", MIXED.variant("ab")).arms
    assert a == Arm() and b == Arm(source_shares={"ann": 1.0}, order="als")


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "Scan"),
        ValueError("a definition written around the API"),
    ],
)
def test_unreadable_experiments_serve_production_or_the_last_known_and_say_so(error: Exception) -> None:
    treatment, report = resolve(Repository(error=error), "home", "u7")
    assert treatment == PRODUCTION_TREATMENT and report.fallbacks == [EXPERIMENTS]


def test_interleaving_drafts_both_pages_and_credits_each_item_to_the_team_that_picked_it() -> None:
    def scored(ids: str) -> list[Scored]:
        return [Scored(item_id, 1.0 - n / 10, "ann") for n, item_id in enumerate(ids)]

    a, b = scored("abcdef"), scored("bxaycz")
    page, teams = interleave([a, b], 6, seed="r-1")
    assert page == interleave([a, b], 6, seed="r-1")[0]  # the same request, the same page
    assert len(page) == len({item.item_id for item in page}) == 6 and sorted(teams) == ["A"] * 3 + ["B"] * 3
    for item, team in zip(page, teams, strict=True):
        assert item.item_id in {i.item_id for i in (a if team == "A" else b)}


def test_pinned_source_shares_are_the_merges_quotas(model_dir: Path) -> None:
    loaded = load_model(model_dir).model
    assert loaded is not None
    state = from_record(loaded.items, ShopperRecord(user_id="u001"))
    popular = retrieval.proposals(loaded.items, state, 20)["popularity"].rows[:20].tolist()
    default = retrieval.candidates(loaded.items, state, 20)
    pinned = retrieval.candidates(loaded.items, state, 20, shares={"popularity": 1.0})
    # popularity fills every place first when pinned (a candidate is tagged with the first source in
    # registry order that proposed it, so the rows say which quota admitted it), a share of them by default
    assert sorted(pinned.rows.tolist()) == sorted(popular)
    assert sorted(default.rows.tolist()) != sorted(popular)
