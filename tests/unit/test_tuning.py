"""Validation tuning on the tiny shop: deterministic for a seed, within its budget, never below the
defaults on validation; the fallback to a simple list engages when the pipeline loses (a shop of pure
trends) and not otherwise; the long-tail strength is chosen by its rule from the validation pages."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from merchandiser.reranking import LONG_TAIL
from merchandiser.retrieval import SOURCE_NAMES
from tests.tiny_shop import N_ITEMS, N_USERS, START, TINY_HP, category_of, shop
from training.channels import Channels
from training.fit import Hyperparameters, build_catalog, epoch_seconds, user_segments
from training.split import temporal_split
from training.tuning import SECONDS_CAP, Budget, Tuned, auto_seconds, budget_of, search, tune
from training.tuning.long_tail import STOP_DROP, STRENGTHS, choose_strength

TRIALS = 6  # retrieval 2, ranker 2, page 2: enough to move, small enough for a unit test
HP = replace(TINY_HP, tuning_trials=TRIALS, tuning_seconds=100_000.0)


def tuned_on(channels: Channels, hp: Hyperparameters = HP, clock=None) -> Tuned:  # type: ignore[no-untyped-def]
    catalog = build_catalog(channels.items)
    split = temporal_split(channels.interactions, hp.test_fraction)
    budget = budget_of(hp, len(split.train))
    assert budget is not None
    extra = {} if clock is None else {"clock": clock}
    validation_start, test_start = epoch_seconds(split.validation_start), epoch_seconds(split.test_start)
    tuned = tune(
        split.train,
        split.validation,
        catalog,
        validation_start,
        2 * validation_start - test_start,
        hp,
        channels.users,
        user_segments(channels.users),
        budget,
        **extra,
    )
    assert tuned is not None
    return tuned


def trends_shop(seed: int = 5) -> Channels:
    """A shop of pure trends: every two days four items of one category are what everyone looks at and
    buys (nine events in ten), whatever they did before; no shopper has a lasting taste."""
    rng = np.random.default_rng(seed)
    base = shop()
    records = []
    for user in range(N_USERS):
        for _ in range(40):
            day = float(rng.uniform(0, 60))
            period = int(day // 2)
            hot = np.random.default_rng(period).choice(N_ITEMS // 3, size=4, replace=False) * 3 + period % 3
            item = int(rng.choice(hot)) if rng.random() < 0.9 else int(rng.integers(N_ITEMS))
            event = rng.choice(["view", "click", "purchase"], p=[0.6, 0.3, 0.1])
            when = START + pd.Timedelta(days=day)
            records.append((f"u{user:03d}", f"i{item:02d}", event, when, f"u{user:03d}-{when:%m%d}"))
    interactions = pd.DataFrame(
        records, columns=["user_id", "item_id", "event_type", "timestamp", "session_id"]
    )
    interactions = interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    assert category_of(3) == category_of(0)  # a period's hot items share one category
    return replace(base, interactions=interactions)


@pytest.fixture(scope="module")
def tuned() -> Tuned:
    return tuned_on(shop())


def _without_times(summary: dict) -> dict:  # type: ignore[type-arg]
    kept = {k: v for k, v in summary.items() if k not in ("seconds", "wall_seconds", "stages", "trials")}
    kept["trials"] = [{k: v for k, v in trial.items() if k != "seconds"} for trial in summary["trials"]]
    return kept


def test_tuning_is_deterministic_for_a_seed(tuned: Tuned) -> None:
    # Given the tiny shop tuned once / When tuned again with the same seed and a binding trial budget
    again = tuned_on(shop())
    # Then every trial scores the same and the same values are chosen
    assert _without_times(again.summary) == _without_times(tuned.summary)
    assert again.hp == tuned.hp and again.choices == tuned.choices


def test_tuning_keeps_to_its_trial_budget_and_never_ends_below_the_defaults(tuned: Tuned) -> None:
    summary = tuned.summary
    # Then the pipeline's stages ran at most the trials given, each stage its share
    assert len(summary["trials"]) <= TRIALS
    for stage in summary["stages"].values():
        assert 1 <= stage["trials"] <= stage["budget_trials"] and stage["stopped_by"] == "trials"
    # And the chosen values score at least as well as the defaults (the first trial) on validation
    assert summary["best_ndcg@10"] >= summary["default_ndcg@10"]
    values = [trial["ndcg@10"] for trial in summary["trials"]]
    assert summary["best_ndcg@10"] == max(values) and summary["default_ndcg@10"] == values[0]
    # And the chosen shares are a distribution over the registered sources
    shares = tuned.choices.source_shares
    assert set(shares) == set(SOURCE_NAMES) and sum(shares.values()) == pytest.approx(1.0)


def test_tuning_stops_starting_trials_once_its_time_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a clock on which a retrieval fit takes 2 s and a ranker 1 s (a retrieval trial fits twice and
    # learns a ranker: 5 s; a ranker trial 1 s; a page trial nothing), and 30 s for 40 trials
    elapsed = [0.0]

    def costing(function, seconds):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            elapsed[0] += seconds
            return function(*args, **kwargs)

        return timed

    monkeypatch.setattr(search, "fit_retrieval", costing(search.fit_retrieval, 2.0))
    monkeypatch.setattr(search, "fit_ranker", costing(search.fit_ranker, 1.0))
    hp = replace(HP, tuning_trials=40, tuning_seconds=30.0)
    # When the tiny shop is tuned
    summary = tuned_on(shop(), hp, clock=lambda: elapsed[0]).summary
    stages = summary["stages"]
    # Then retrieval stopped after two trials (a third would end past its 45%: 13.5 s), the ranker stage
    # after its share of what was left, both for time, and the whole search kept within its 30 s
    assert stages["retrieval"]["trials"] == 2 and stages["retrieval"]["stopped_by"] == "time"
    assert stages["ranker"]["stopped_by"] == "time"
    assert stages["ranker"]["trials"] < stages["ranker"]["budget_trials"]
    assert summary["seconds"] <= 30.0
    # And the page stage, which costs nothing on this clock, ran its trials
    assert stages["page"]["stopped_by"] == "trials"


def test_the_budget_scales_with_the_data_and_zero_turns_tuning_off() -> None:
    assert budget_of(replace(HP, tuning_trials=0), 10_000) is None
    assert budget_of(replace(HP, tuning_seconds=0.0), 10_000) is None
    assert budget_of(replace(HP, tuning_seconds=-1.0), 200_000) == Budget(TRIALS, auto_seconds(200_000), True)
    assert auto_seconds(0) == 10.0 and auto_seconds(100_000) == 50.0 and auto_seconds(10**8) == SECONDS_CAP


def test_the_fallback_stays_off_where_the_pipeline_beats_the_simple_lists(tuned: Tuned) -> None:
    fallback = tuned.choices.fallback
    assert fallback["engaged"] is False
    assert fallback["validation"]["pipeline"] > max(
        fallback["validation"][name] for name in ("pop_recent", "trending")
    )


def test_the_fallback_engages_on_a_shop_of_pure_trends() -> None:
    # Given a shop where what sells changes every two days and nobody keeps a taste
    # When it is tuned with one trial per stage (the page keeps its 30% category cap and discovery slots)
    tuned = tuned_on(trends_shop(), replace(HP, tuning_trials=3))
    fallback = tuned.choices.fallback
    # Then the page lost to a simple list on validation, and the model serves that list's order
    assert fallback["engaged"] is True, fallback
    best = fallback["anchor"]
    assert fallback["validation"]["pipeline"] < fallback["validation"][best]
    assert 0.0 < fallback["weight"] <= 1.0 and fallback["surfaces"] == ["home", "category"]
    # And its source proposes enough candidates for the top of the page
    source = {"pop_recent": "recent_popularity", "trending": "trending"}[best]
    assert tuned.choices.source_shares[source] >= 0.05


def test_the_long_tail_strength_is_chosen_on_validation_and_travels_in_the_manifest(tuned: Tuned) -> None:
    # Given the tuned tiny shop / When the search chose the long-tail correction's strength
    record = tuned.choices.long_tail
    measured = {float(strength): row for strength, row in record["validation"].items()}
    # Then the grid's strengths were scored on the validation pages in order, from none, up to the end or
    # to the first that cost more than the stopping drop
    tried = sorted(measured)
    assert tried == [0.0, *STRENGTHS[: len(tried) - 1]]
    base = measured[0.0]["ndcg@10"]
    assert all(measured[s]["ndcg@10"] >= (1 - STOP_DROP) * base for s in tried[:-1])
    assert len(tried) == len(STRENGTHS) + 1 or measured[tried[-1]]["ndcg@10"] < (1 - STOP_DROP) * base
    assert all(set(row) == {"ndcg@10", "coverage@20", "long_tail@20"} for row in measured.values())
    # And the strength kept is the rule's choice from those figures, with its reason
    assert record["strength"] == choose_strength(measured)["strength"] and record["reason"]
    # And the model's manifest carries it to serving
    assert tuned.choices.manifest()[LONG_TAIL] == record
