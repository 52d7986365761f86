"""Experiment definitions in a DynamoDB table (one item per experiment, key ``name``), read by serving
through a short in-process cache.

Why DynamoDB with a cache rather than AppConfig (Powertools Feature Flags):
- starting or stopping an experiment is an admin write that should take effect within seconds;
  AppConfig wants a configuration profile, a hosted version per change and a deployment strategy
  (with its bake time) for what is one row;
- ``PUT /experiments/{name}`` writes the row itself, validated by the same pydantic model serving
  reads back, and the one-running-experiment-per-surface check reads the same table: AppConfig would
  make the write a multi-step deployment and the check a read of another service;
- the local twin runs on moto, which serves DynamoDB fully; AppConfig's data plane (the Lambda
  extension) is not there, so the twin would test something else than AWS runs;
- the cost on the request path is one small Scan (a handful of items) per container per TTL, the
  same order as AppConfig's extension polling, with no extension layer to ship.
What AppConfig would add (validators, gradual rollout, automatic rollback on alarm) the experiment
itself provides: the shares are the rollout, the report is the alarm.

Writes check surfaces against the running experiments just read; two admins starting overlapping
experiments in the same second could both pass (an admin route, not a hot path: accepted).

Beside the definition, each item keeps ``started_at`` (its first write as running) and ``stopped_at``
(when it was last stopped; none while it runs): the report's period. Stopping keeps the definition, since
the report needs its declared shares and its variants (``stop``); ``delete`` forgets it.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from merchandiser.experiments.assignment import check_surfaces_free
from merchandiser.experiments.definition import Experiment, parse_experiment
from merchandiser.experiments.errors import UnknownExperimentError

logger = logging.getLogger(__name__)

KEY = "name"
DEFINITION = "definition"
STARTED_AT, STOPPED_AT = "started_at", "stopped_at"


@dataclass(frozen=True)
class StoredExperiment:
    """A definition and when it ran: from ``started_at`` to ``stopped_at`` (None: still running)."""

    experiment: Experiment
    started_at: datetime | None
    stopped_at: datetime | None


class ExperimentsTableSettings(BaseModel):
    """The fields a function reading experiments adds to its settings (merged into ServingSettings)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    experiments_table: str = Field(alias="EXPERIMENTS_TABLE")
    # How stale a container's view of the experiments may be: a start or stop reaches every page
    # within this many seconds.
    experiments_cache_seconds: float = Field(default=10.0, alias="EXPERIMENTS_CACHE_SECONDS", ge=0.0)


class ExperimentRepository:
    def __init__(
        self,
        table_name: str,
        dynamodb: Any,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.table_name = table_name
        self.dynamodb = dynamodb  # a boto3 DynamoDB client
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cached: tuple[Experiment, ...] | None = None
        self._read_at = float("-inf")
        self.read_failures = 0  # serving kept the last known experiments this many times

    # --- admin: consistent reads, no cache -------------------------------------------------------
    def put(self, experiment: Experiment) -> StoredExperiment:
        """Creates or replaces ``experiment``; refuses one that overlaps a running experiment's surfaces."""
        check_surfaces_free(self.list(), experiment)
        now = datetime.now(UTC)
        found = self.dynamodb.get_item(
            TableName=self.table_name, Key={KEY: {"S": experiment.name}}, ConsistentRead=True
        )
        before = _stored(found["Item"]) if "Item" in found else None
        started_at = before.started_at if before is not None and before.started_at else None
        if started_at is None and experiment.running:
            started_at = now
        stopped_at = None
        if not experiment.running:
            stopped_at = (
                before.stopped_at
                if before is not None and before.stopped_at and not before.experiment.running
                else now
            )
        item = {
            KEY: {"S": experiment.name},
            DEFINITION: {"S": experiment.model_dump_json()},
            "status": {"S": experiment.status},
            "updated_at": {"S": now.isoformat()},
        }
        for key, moment in ((STARTED_AT, started_at), (STOPPED_AT, stopped_at)):
            if moment is not None:
                item[key] = {"S": moment.isoformat()}
        self.dynamodb.put_item(TableName=self.table_name, Item=item)
        self._cached = None  # this container sees its own write at once
        return StoredExperiment(experiment, started_at, stopped_at)

    def get(self, name: str) -> Experiment:
        return self.stored(name).experiment

    def stored(self, name: str) -> StoredExperiment:
        item = self.dynamodb.get_item(TableName=self.table_name, Key={KEY: {"S": name}}, ConsistentRead=True)
        if "Item" not in item:
            raise UnknownExperimentError(f"no experiment named {name!r}")
        return _stored(item["Item"])

    def stop(self, name: str) -> StoredExperiment:
        """Stops ``name``: nobody is assigned any more, the definition stays for its report. Stopping a
        stopped experiment changes nothing."""
        current = self.stored(name)
        if not current.experiment.running:
            return current
        return self.put(current.experiment.model_copy(update={"status": "stopped"}))

    def delete(self, name: str) -> None:
        old = self.dynamodb.delete_item(
            TableName=self.table_name, Key={KEY: {"S": name}}, ReturnValues="ALL_OLD"
        )
        if "Attributes" not in old:
            raise UnknownExperimentError(f"no experiment named {name!r}")
        self._cached = None

    def list(self) -> list[Experiment]:
        """Every experiment, running or stopped, by name."""
        return [stored.experiment for stored in self.list_stored()]

    def list_stored(self) -> builtins.list[StoredExperiment]:
        """Every experiment with when it ran, by name."""
        found: builtins.list[StoredExperiment] = []
        for page in self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table_name, ConsistentRead=True
        ):
            found.extend(_stored(item) for item in page["Items"])
        return sorted(found, key=lambda stored: stored.experiment.name)

    # --- serving: cached, never fails the page --------------------------------------------------
    def running(self) -> tuple[Experiment, ...]:
        """The running experiments, read at most once per ``cache_seconds``.

        If the table cannot be read, the last known experiments keep serving (none before the first
        successful read: every page is production) and ``read_failures`` counts it; the next call
        tries again rather than waiting out the TTL.
        """
        now = self.clock()
        if self._cached is not None and now - self._read_at < self.cache_seconds:
            return self._cached
        try:
            experiments = tuple(e for e in self.list() if e.running)
        except (ClientError, BotoCoreError) as exc:
            self.read_failures += 1
            logger.warning("experiments table unreadable, serving the last known ones: %s", exc)
            return self._cached or ()
        self._cached, self._read_at = experiments, now
        return experiments


def _from_item(item: dict[str, Any]) -> Experiment:
    return parse_experiment(json.loads(item[DEFINITION]["S"]))


def _stored(item: dict[str, Any]) -> StoredExperiment:
    def moment(key: str) -> datetime | None:
        return datetime.fromisoformat(item[key]["S"]) if key in item else None

    return StoredExperiment(_from_item(item), moment(STARTED_AT), moment(STOPPED_AT))


def create_table(dynamodb: Any, table_name: str) -> None:
    """The table as the data stack declares it (on-demand, key ``name``): for the twin and tests."""
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
