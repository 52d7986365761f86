"""The training job scores the production model on its own test window, beside the candidate, for the gate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from merchandiser.publishing import decide
from merchandiser.store import read_manifest
from tests.tiny_shop import START, TINY_HP, shop
from training.job import run

HP = replace(TINY_HP, gate_min_users=10)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Production: trained on the tiny shop's first 52 of 60 days."""
    channels = shop()
    earlier = channels.interactions[channels.interactions["timestamp"] < START + pd.Timedelta(days=52)]
    root = tmp_path_factory.mktemp("production")
    run(replace(channels, interactions=earlier.reset_index(drop=True)), HP, root / "model", root / "output")
    return root / "model"


def test_the_candidate_and_production_are_scored_on_the_window_production_never_saw(
    production: Path, tmp_path: Path
) -> None:
    # Given production trained up to day 52 and a candidate trained on all 60 days (test window: days 48-60)
    # When the candidate's job is given the production model
    evaluation = run(shop(), HP, tmp_path / "model", tmp_path / "output", production)
    # Then the gate block scores both on the test events after production's data only
    gate = evaluation["gate"]
    seen_until = read_manifest(production)["data"]["last_timestamp"]
    assert gate["scored"] is True and gate["model_version"] == read_manifest(production)["model_version"]
    assert gate["production_data_until"] == seen_until and gate["window_start"] > seen_until
    assert gate["users"] >= HP.gate_min_users
    assert 0.0 < gate["candidate"] <= 1.0 and 0.0 < gate["production"] <= 1.0
    # And the candidate's manifest carries it for the publish step's gate, which decides on it
    manifest = read_manifest(tmp_path / "model")
    assert manifest["gate"] == gate
    decision = decide(
        manifest, {"model_version": gate["model_version"], "manifest": read_manifest(production)}
    )
    assert decision["evidence"] == "same window"


def test_a_production_model_that_saw_the_whole_window_is_not_compared(
    model_dir: Path, tmp_path: Path
) -> None:
    # Given production trained on every event the candidate has (the session's tiny model)
    evaluation = run(shop(), HP, tmp_path / "model", tmp_path / "output", model_dir)
    # Then no shopper is left to compare them on, and the gate block says so
    assert evaluation["gate"]["scored"] is False and evaluation["gate"]["users"] == 0
    assert "after production's data" in evaluation["gate"]["reason"]


def test_an_unreadable_production_model_is_reported_not_fatal(tmp_path: Path) -> None:
    empty = tmp_path / "production"
    empty.mkdir()
    evaluation = run(shop(), HP, tmp_path / "model", tmp_path / "output", empty)
    assert evaluation["gate"]["scored"] is False and "unreadable" in evaluation["gate"]["reason"]
