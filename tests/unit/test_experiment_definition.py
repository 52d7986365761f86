"""Experiment definitions: what runs, and what is refused with a message naming the problem."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from merchandiser.experiments import ExperimentDefinitionError, parse_experiment
from merchandiser.experiments.definition import SURFACES, Surface
from merchandiser.settings import RetailerRules


def definition(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "home-holdout",
        "surfaces": ["home", "category"],
        "variants": [
            {"name": "personalized", "share": 0.5},
            {"name": "holdout", "share": 0.5, "policy": "popularity"},
        ],
    }
    return {**base, **changes}


def test_the_issue_example_parses_with_the_holdout_as_baseline():
    # Given the definition of the issue, When parsed
    experiment = parse_experiment(definition())
    # Then it runs on its surfaces and compares against the holdout, whatever the order
    assert experiment.running and experiment.surfaces == ("home", "category")
    assert experiment.baseline.name == "holdout"
    assert experiment.shares() == {"personalized": 0.5, "holdout": 0.5}


def test_a_variant_pins_model_sources_rules_or_an_interleaving_of_two_rankers():
    # Given variants pinning each thing a variant may pin
    experiment = parse_experiment(
        json.dumps(
            definition(
                variants=[
                    {"name": "control", "share": 0.25},
                    {"name": "new-model", "share": 0.25, "model_version": "20261201-0300"},
                    {"name": "more-trending", "share": 0.2, "source_shares": {"ann": 0.5, "trending": 0.3}},
                    {"name": "no-explore", "share": 0.1, "rules": {"explore_share": 0.0}},
                    {
                        "name": "interleaved",
                        "share": 0.2,
                        "kind": "interleaving",
                        "rankers": [{"name": "current"}, {"name": "candidate", "model_version": "v2"}],
                    },
                ]
            )
        )
    )
    # Then each keeps its pin, rules lay over the retailer's, and the first is the baseline without a
    # holdout... except a variant named control, which is the baseline wherever it stands
    assert experiment.baseline.name == "control"
    assert experiment.variant("new-model").model_version == "20261201-0300"
    assert experiment.variant("more-trending").source_shares == {"ann": 0.5, "trending": 0.3}
    retailer = RetailerRules(explore_share=0.2, promoted_share=0.1)
    rules = experiment.variant("no-explore").rules_over(retailer)
    assert rules.explore_share == 0.0 and rules.promoted_share == 0.1
    assert experiment.variant("control").rules_over(retailer) is retailer
    rankers = experiment.variant("interleaved").rankers
    assert rankers is not None and [r.name for r in rankers] == ["current", "candidate"]


def test_without_holdout_or_control_the_first_variant_is_the_baseline():
    experiment = parse_experiment(
        definition(variants=[{"name": "b", "share": 0.5}, {"name": "a", "share": 0.5, "policy": "trending"}])
    )
    assert experiment.baseline.name == "b"


def test_surfaces_are_one_constant():
    # The Literal the model validates with and the tuple every other module reads are the same list
    assert get_args(Surface) == SURFACES
    assert set(SURFACES) == {"home", "category", "similar", "bought-together", "rank", "popular"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}]},
            "variant shares sum to 0.9; they must sum to 1",
        ),
        (
            {"variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "policy": "random"}]},
            "variants.1.policy: Input should be 'popularity' or 'trending'",
        ),
        ({"variants": []}, "variants: Tuple should have at least 1 item"),
        (
            {"variants": [{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]},
            "duplicate variant names ['a']",
        ),
        ({"surfaces": ["home", "checkout"]}, "surfaces.1: Input should be 'home', 'category'"),
        ({"surfaces": []}, "surfaces: Tuple should have at least 1 item"),
        ({"surfaces": ["home", "home"]}, "duplicate surfaces ['home']"),
        ({"name": "Home Test"}, "name: String should match pattern"),
        ({"name": ""}, "name: String should match pattern"),
        ({"variants": [{"name": "ok", "share": 1.0}, {"name": "bad/name", "share": 0.0}]}, "variants.1.name"),
        ({"variants": [{"name": "production", "share": 1.0}]}, "'production' is what a page says"),
        ({"variants": [{"name": "a", "share": 1.5}]}, "variants.0.share: Input should be less than or equal"),
        ({"variants": [{"name": "a", "share": 1.0, "colour": "red"}]}, "variants.0.colour: Extra inputs"),
        (
            {"variants": [{"name": "a", "share": 1.0, "rules": {"explore_share": 0.9}}]},
            "variant 'a' rules: explore_share: Input should be less than or equal to 0.5",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "rules": {"shuffle": True}}]},
            "variant 'a' rules: shuffle: Extra inputs are not permitted",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "source_shares": {"ann": 0.5, "magic": 0.1}}]},
            "unknown candidate sources ['magic']",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "source_shares": {"ann": 0.8, "trending": 0.4}}]},
            "source shares sum to 1.2",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "source_shares": {"ann": -0.1, "trending": 0.4}}]},
            "source shares must not be negative",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "policy": "popularity", "model_version": "v2"}]},
            "a policy list takes no model_version, source_shares or order",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "kind": "interleaving"}]},
            "needs exactly two rankers, got 0",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "kind": "interleaving", "rankers": [{"name": "x"}]}]},
            "needs exactly two rankers, got 1",
        ),
        (
            {
                "variants": [
                    {
                        "name": "a",
                        "share": 1.0,
                        "kind": "interleaving",
                        "rankers": [{"name": "x"}, {"name": "x"}],
                    }
                ]
            },
            "the two rankers need distinct names",
        ),
        (
            {
                "variants": [
                    {
                        "name": "a",
                        "share": 1.0,
                        "kind": "interleaving",
                        "policy": "trending",
                        "rankers": [{"name": "x"}, {"name": "y"}],
                    }
                ]
            },
            "an interleaving variant pins policy, model_version, source_shares and order on its rankers",
        ),
        (
            {"variants": [{"name": "a", "share": 1.0, "rankers": [{"name": "x"}, {"name": "y"}]}]},
            "rankers belong to kind 'interleaving' only",
        ),
        (
            {
                "variants": [
                    {
                        "name": "a",
                        "share": 1.0,
                        "kind": "interleaving",
                        "rankers": [
                            {"name": "x", "policy": "popularity", "model_version": "v1"},
                            {"name": "y"},
                        ],
                    }
                ]
            },
            "ranker 'x': a policy list takes no model_version, source_shares or order",
        ),
        ({"status": "paused"}, "status: Input should be 'running' or 'stopped'"),
    ],
)
def test_a_bad_definition_is_refused_with_a_message_naming_the_problem(changes: dict[str, Any], message: str):
    # Given a definition with one problem, When parsed, Then the error names it
    with pytest.raises(ExperimentDefinitionError) as refused:
        parse_experiment(definition(**changes))
    assert message in str(refused.value)


def test_shares_within_a_millionth_of_one_are_accepted():
    thirds = [{"name": n, "share": 0.333333} for n in ("a", "b")] + [{"name": "c", "share": 0.333334}]
    assert len(parse_experiment(definition(variants=thirds)).variants) == 3
    almost = [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.49999}]
    with pytest.raises(ExperimentDefinitionError, match=r"sum to 0\.99999"):
        parse_experiment(definition(variants=almost))


def test_malformed_json_and_a_name_differing_from_the_path_are_refused():
    with pytest.raises(ExperimentDefinitionError, match="Invalid JSON"):
        parse_experiment('{"name": ')
    with pytest.raises(
        ExperimentDefinitionError, match="name 'home-holdout' differs from the path's 'other'"
    ):
        parse_experiment(definition(), name="other")


def test_an_unknown_variant_name_is_a_key_error():
    with pytest.raises(KeyError, match="no variant 'nope'"):
        parse_experiment(definition()).variant("nope")
