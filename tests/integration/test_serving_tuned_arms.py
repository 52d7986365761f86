"""The training job's tuned choices inside the experiment arms of the home page: the tuned page rules under a
variant's, the fallback's blend and the long-tail correction on the pipeline's arm only, the model's own
source shares when an arm pins none; the served page is the one the training job's evaluation scores."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from merchandiser.experiments import parse_experiment
from merchandiser.publishing import user_profiles
from merchandiser.retrieval import CANDIDATES, SOURCE_SHARES, merge_proposals, model_shares
from merchandiser.serving import Model, Recommender, Treatment, runtime
from merchandiser.settings import RetailerRules
from merchandiser.shopper import from_record
from merchandiser.store import FeatureStore, SessionEvent
from training.evaluation import PAGE, served_lists

VIEWED = ("i01", "i04", "i07")


@pytest.fixture
def store(aws, model_dir: Path) -> FeatureStore:  # type: ignore[no-untyped-def]
    store = FeatureStore(aws.dynamodb, "users", "sessions", "items")
    store.put_profiles(user_profiles(model_dir), model_version="test")
    events = [SessionEvent(f"e{n}", item, "view", 1.0, 1_800_000_000.0 + n) for n, item in enumerate(VIEWED)]
    store.append_session("viewer", events, [], expires_at=1_900_000_000)
    return store


@pytest.fixture
def shopper(model_dir: Path) -> str:
    return str(next(p for p in user_profiles(model_dir) if p["purchased"])["user_id"])


def tuned(model_dir: Path, **manifest: Any) -> Model:
    """The tiny model with these manifest entries, as a training job that chose them writes them."""
    served = runtime.model(str(model_dir))
    items = copy.copy(served.items)
    items.manifest = {**served.items.manifest, **manifest}
    return Model(items, served.ranker)


def treatment(**variant: Any) -> Treatment:
    experiment = parse_experiment(
        {"name": "exp", "surfaces": ["home"], "variants": [{"name": "b", "share": 1.0, **variant}]}
    )
    return Treatment(experiment.name, experiment.variants[0])


def page(model: Model, store: FeatureStore, user: str, k: int = 10, **how: Any) -> list[str]:
    return [item["item_id"] for item in Recommender(model, store).recommend(user, k=k, **how)["items"]]


def test_tuned_page_rules_apply_in_every_arm_and_a_variants_rules_win(
    model_dir: Path, store: FeatureStore
) -> None:
    # Given a model whose training chose to show the session's items, and a shopper who just viewed three
    model = tuned(model_dir, page_rules={"show_session_items": True})
    # When production and a holdout serve the shopper, and a variant that pins the rule off
    production = page(model, store, "viewer", k=30)
    holdout = page(model, store, "viewer", k=30, treatment=treatment(policy="popularity"))
    pinned = page(model, store, "viewer", k=30, treatment=treatment(rules={"show_session_items": False}))
    # Then the tuned rule lets the viewed items on both arms' pages; the variant's rule keeps them off
    assert set(production) & set(VIEWED) and set(holdout) & set(VIEWED)
    assert not set(pinned) & set(VIEWED)
    # And a model without the tuned rule keeps them off by default
    assert not set(page(tuned(model_dir), store, "viewer", k=30)) & set(VIEWED)


def test_the_fallback_blends_the_pipelines_arm_only(
    model_dir: Path, store: FeatureStore, shopper: str
) -> None:
    # Given the same model with and without an engaged fallback to the trending list (its order alone)
    plain = tuned(model_dir)
    engaged = tuned(model_dir, fallback_to_anchor={"engaged": True, "anchor": "trending", "weight": 1.0})
    # When the pipeline's arm, a pinned ALS order and a popularity holdout serve the shopper
    als, holdout = treatment(order="als"), treatment(policy="popularity")
    # Then only the pipeline's page changes: it is the trending list's order, not the ranker's
    assert page(engaged, store, shopper) != page(plain, store, shopper)
    assert page(engaged, store, shopper, treatment=als) == page(plain, store, shopper, treatment=als)
    assert page(engaged, store, shopper, treatment=holdout) == page(plain, store, shopper, treatment=holdout)


def test_an_arm_without_shares_takes_the_models_and_a_variants_shares_win(
    model_dir: Path, store: FeatureStore, shopper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model whose training gave trending every place it fills first
    chosen = {"trending": 1.0, "ann": 0.0}
    model = tuned(model_dir, source_shares=chosen)
    merged: list[dict[str, float]] = []

    def spy(found: Any, k: int, exclude: frozenset[int], shares: Any = None, blocked: Any = None) -> Any:
        merged.append(dict(shares or {}))
        return merge_proposals(found, k, exclude, shares, blocked)

    # (the real merge, watched: what shares each arm merged with)
    monkeypatch.setattr("merchandiser.retrieval.retriever.merge_proposals", spy)
    # When production serves the shopper, then a variant that pins its own shares
    page(model, store, shopper)
    page(model, store, shopper, treatment=treatment(source_shares={"ann": 1.0}))
    # Then production merged with the model's shares (the registry's for sources it does not name)
    assert merged[0] == model_shares(model.items) == {**SOURCE_SHARES, **chosen}
    # And the variant's pinned shares are the merge's quotas, whatever the model chose
    assert merged[1] == {"ann": 1.0}


def test_the_long_tail_correction_changes_the_pipelines_arm_only(
    model_dir: Path, store: FeatureStore, shopper: str
) -> None:
    # Given the same model without and with a strong long-tail correction chosen by its training
    plain = tuned(model_dir)
    corrected = tuned(model_dir, long_tail_correction={"engaged": True, "strength": 2.0})
    # When the pipeline's arm, a pinned ALS order and a popularity holdout serve the shopper
    als, holdout = treatment(order="als"), treatment(policy="popularity")
    # Then only the pipeline's page changes: a variant's pinned order or list stays as pinned
    assert page(corrected, store, shopper, k=20) != page(plain, store, shopper, k=20)
    assert page(corrected, store, shopper, treatment=als) == page(plain, store, shopper, treatment=als)
    assert page(corrected, store, shopper, treatment=holdout) == page(
        plain, store, shopper, treatment=holdout
    )


@pytest.mark.parametrize("strength", [0.0, 0.3, 2.0])
def test_the_served_page_is_the_page_the_training_job_evaluates(
    model_dir: Path, store: FeatureStore, shopper: str, strength: float
) -> None:
    # Given a model with a long-tail strength and a page without exploration draws (drawn per request)
    model = tuned(model_dir, long_tail_correction={"engaged": strength > 0, "strength": strength})
    rules = RetailerRules.model_validate({"explore_share": 0.0})
    now = 1_800_000_100.0
    recommender = Recommender(model, store, clock=lambda: now, merchandising=rules)
    # When serving answers the shopper, and the job's evaluation builds the same shopper's page
    served = [item["item_id"] for item in recommender.recommend(shopper, k=PAGE)["items"]]
    state = recommender.user_state(store.shopper(shopper))
    _, evaluated = served_lists(model, state, now, CANDIDATES, shopper, rules)
    # Then they are the same page, item for item
    assert served == [str(model.items.catalog.item_ids[row]) for row in evaluated[:PAGE]]


NOW = 1_800_000_100.0


def test_serving_builds_the_page_the_evaluation_scores_with_a_personal_anchor(
    model_dir: Path, store: FeatureStore, shopper: str
) -> None:
    # Given the tiny model serving a personal anchor blended half and half (its co-views as the weights),
    # with places for its source, and rules without exploration (its draws are per request)
    base = tuned(model_dir)
    table = base.items.signals.also_viewed
    fallback = {"engaged": True, "anchor": "item_knn", "kind": "personal", "matrix": "binary", "weight": 0.5}
    shares = {**model_shares(base.items), "item_anchor": 0.2}
    model = tuned(model_dir, fallback_to_anchor=fallback, source_shares=shares)
    model.items.signals = replace(model.items.signals, item_anchor=table)
    retailer = RetailerRules(explore_share=0.0)
    # When serving builds the shopper's page, and the job's evaluation builds it from the same state
    served = Recommender(model, store, clock=lambda: NOW, merchandising=retailer).recommend(shopper, k=PAGE)
    state = from_record(model.items, store.shopper(shopper))
    _, evaluated = served_lists(model, state, NOW, CANDIDATES, shopper, retailer)
    # Then they are the same page, item for item, and the anchor changed it
    assert [item["item_id"] for item in served["items"]] == [
        str(model.items.catalog.item_ids[row]) for row in evaluated[:PAGE]
    ]
    _, plain = served_lists(
        base, from_record(base.items, store.shopper(shopper)), NOW, CANDIDATES, shopper, retailer
    )
    assert plain[:PAGE] != evaluated[:PAGE]
