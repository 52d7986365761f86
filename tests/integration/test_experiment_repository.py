"""Experiment definitions in DynamoDB (moto): admin writes and reads, serving's cached view."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from merchandiser.experiments import SurfaceConflictError, UnknownExperimentError, parse_experiment
from merchandiser.experiments.repository import ExperimentRepository, ExperimentsTableSettings, create_table

TABLE = "experiments"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, TABLE)
        yield client


def experiment(name: str, surfaces: list[str], status: str = "running"):
    return parse_experiment(
        {
            "name": name,
            "surfaces": surfaces,
            "status": status,
            "variants": [
                {"name": "personalized", "share": 0.5, "rules": {"explore_share": 0.0}},
                {"name": "holdout", "share": 0.5, "policy": "popularity"},
            ],
        }
    )


def test_put_get_list_delete_round_trip_the_definition(dynamodb: Any):
    # Given an admin repository
    repository = ExperimentRepository(TABLE, dynamodb)
    home, similar = experiment("home-test", ["home"]), experiment("similar-test", ["similar"], "stopped")
    # When experiments are written
    repository.put(home)
    repository.put(similar)
    # Then they read back equal, listed by name, and one item per experiment keyed by name
    assert repository.get("home-test") == home
    assert repository.list() == [home, similar]
    item = dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "home-test"}})["Item"]
    assert item["status"] == {"S": "running"} and "updated_at" in item
    # and an update replaces, a delete removes
    repository.put(experiment("home-test", ["home", "category"]))
    assert repository.get("home-test").surfaces == ("home", "category")
    repository.delete("home-test")
    assert [e.name for e in repository.list()] == ["similar-test"]


def test_unknown_names_raise_the_error_the_route_maps_to_404(dynamodb: Any):
    repository = ExperimentRepository(TABLE, dynamodb)
    with pytest.raises(UnknownExperimentError, match="no experiment named 'nope'"):
        repository.get("nope")
    with pytest.raises(UnknownExperimentError, match="no experiment named 'nope'"):
        repository.delete("nope")


def test_a_second_running_experiment_on_a_surface_is_refused_and_not_written(dynamodb: Any):
    repository = ExperimentRepository(TABLE, dynamodb)
    repository.put(experiment("home-test", ["home", "category"]))
    with pytest.raises(SurfaceConflictError, match="'home-test' is already running on category"):
        repository.put(experiment("category-test", ["category"]))
    assert [e.name for e in repository.list()] == ["home-test"]
    # once stopped, the surface is free
    repository.put(experiment("home-test", ["home", "category"], "stopped"))
    repository.put(experiment("category-test", ["category"]))
    assert [e.name for e in repository.list()] == ["category-test", "home-test"]


def test_serving_reads_the_running_experiments_once_per_ttl(dynamodb: Any):
    # Given a serving container with a 10 s cache, and an admin writing from elsewhere
    clock = Clock()
    serving = ExperimentRepository(TABLE, dynamodb, cache_seconds=10.0, clock=clock)
    admin = ExperimentRepository(TABLE, dynamodb)
    admin.put(experiment("home-test", ["home"]))
    admin.put(experiment("old-test", ["similar"], "stopped"))
    assert [e.name for e in serving.running()] == ["home-test"]  # stopped ones assign nobody
    # When the admin starts another experiment
    admin.put(experiment("rank-test", ["rank"]))
    # Then serving sees it only once its cache has expired
    clock.now += 9.0
    assert [e.name for e in serving.running()] == ["home-test"]
    clock.now += 1.5
    assert [e.name for e in serving.running()] == ["home-test", "rank-test"]
    # and a container's own write is visible at once
    serving.put(experiment("category-test", ["category"]))
    assert len(serving.running()) == 3


def test_an_unreadable_table_keeps_the_last_known_experiments_and_counts_it(dynamodb: Any):
    clock = Clock()
    # Given a container that never read the table: no table, every page is production
    blind = ExperimentRepository("missing", dynamodb, clock=clock)
    assert blind.running() == () and blind.read_failures == 1
    # Given a container that read the table once, then the table is gone
    serving = ExperimentRepository(TABLE, dynamodb, cache_seconds=10.0, clock=clock)
    serving.put(experiment("home-test", ["home"]))
    known = serving.running()
    dynamodb.delete_table(TableName=TABLE)
    clock.now += 60
    # Then it keeps serving what it knew, counts each failed read and tries again on the next call
    assert serving.running() == known
    assert serving.running() == known
    assert serving.read_failures == 2


def test_settings_read_the_table_and_ttl_from_the_environment():
    settings = ExperimentsTableSettings.model_validate(
        {"EXPERIMENTS_TABLE": "t", "EXPERIMENTS_CACHE_SECONDS": "5"}
    )
    assert settings.experiments_table == "t" and settings.experiments_cache_seconds == 5.0
    assert (
        ExperimentsTableSettings.model_validate({"EXPERIMENTS_TABLE": "t"}).experiments_cache_seconds == 10.0
    )
