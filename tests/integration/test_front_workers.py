"""The twin's API served by worker processes: they answer on one port, take a new environment by being
replaced, leave nothing behind, and a worker that dies or cannot start is reported."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_twin.front_workers import FrontWorkerError, FrontWorkers
from local_twin.http_front import Route

HEALTH = Route("GET", "/health", "retrieval")


def environments(model_dir: Path | str) -> dict[str, dict[str, str]]:
    tables = {
        "USERS_TABLE": "users",
        "ITEMS_TABLE": "items",
        "SESSIONS_TABLE": "sessions",
        "COUNTERS_TABLE": "counters",
        "EXPERIMENTS_TABLE": "experiments",  # serving's settings since experiments and impressions
        "EVENTS_STREAM": "events",
    }
    return {"retrieval": {**tables, "MODEL_DIR": str(model_dir), "POWERTOOLS_LOG_LEVEL": "WARNING"}}


def health(front: FrontWorkers) -> dict[str, Any]:
    with urllib.request.urlopen(f"{front.url}/health", timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture
def front(model_dir: Path) -> Iterator[FrontWorkers]:
    workers = FrontWorkers([HEALTH], environments(model_dir), workers=2)
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


def test_workers_in_their_own_processes_answer_on_one_port(front: FrontWorkers, model_dir: Path) -> None:
    # Given a front of two workers, When the API is called
    answer = health(front)
    # Then a worker process (not this one) answers with the model it loaded
    version = json.loads((model_dir / "manifest.json").read_text())["model_version"]
    assert answer["status"] == "ok" and answer["model_version"] == version
    assert len(set(front.pids)) == 2 and os.getpid() not in front.pids
    front.ensure_alive()


def test_an_update_replaces_the_workers_with_the_new_environment(front: FrontWorkers, tmp_path: Path) -> None:
    # Given a serving front
    old = front.pids
    # When the functions' environment changes (here: a model dir that holds nothing)
    front.update(environments(tmp_path / "no-model"))
    # Then new workers serve it and the old ones are gone
    assert health(front)["model_version"] is None
    assert not set(old) & set(front.pids)
    assert not any(Path(f"/proc/{pid}").exists() for pid in old)


def test_stop_leaves_no_worker_and_no_listener(model_dir: Path) -> None:
    # Given a serving front
    workers = FrontWorkers([HEALTH], environments(model_dir), workers=2)
    workers.start()
    pids, url = workers.pids, workers.url
    # When it stops
    workers.stop()
    # Then its processes are gone and its port refuses connections
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_a_worker_that_dies_is_reported(front: FrontWorkers) -> None:
    # Given a worker that something kills
    victim = front.pids[0]
    os.kill(victim, signal.SIGKILL)
    front._workers[0].process.wait(timeout=30)
    # When the front is checked, Then the error names the worker and how it ended
    with pytest.raises(FrontWorkerError, match=f"front worker {victim} was killed by signal 9"):
        front.ensure_alive()


def test_a_worker_that_cannot_start_fails_the_start_and_leaves_nothing(model_dir: Path) -> None:
    # Given a route to a function the workers have no environment for
    workers = FrontWorkers([HEALTH], {"ranking": environments(model_dir)["retrieval"]}, workers=2)
    # When the front starts, Then it says a worker exited before it was ready
    with pytest.raises(FrontWorkerError, match="before it was ready"):
        workers.start()
    assert workers.pids == []
    workers.stop()


def test_settle_is_answered_by_every_worker_and_they_keep_serving(front: FrontWorkers) -> None:
    # Given a serving front (its pages' impressions are put after the pages answer)
    pids = front.pids
    # When the twin asks it to settle, twice
    settled = [front.settle(timeout_s=30), front.settle(timeout_s=30)]
    # Then every worker says its impression buffer is empty, and the same workers still serve
    assert settled == [True, True]
    assert front.pids == pids and health(front)["status"] == "ok"


def test_settle_with_a_dead_worker_says_not_settled(front: FrontWorkers) -> None:
    # Given a worker that something kills
    os.kill(front.pids[1], signal.SIGKILL)
    front._workers[1].process.wait(timeout=30)
    # When the twin asks the front to settle, Then it says not everything was settled (no hang, no error)
    assert front.settle(timeout_s=5) is False
