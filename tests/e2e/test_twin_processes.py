"""The twin's processes: stopping the twin ends moto; a twin whose moto died says so; a model published
while the front's workers serve reaches all of them."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local_twin.front_workers import FrontWorkers
from local_twin.moto_process import MotoProcessDied
from local_twin.twin import Twin
from training.datasets.synthetic_shop import generate

pytestmark = pytest.mark.slow


def test_stop_leaves_no_moto_process_and_no_open_port(tmp_path: Path) -> None:
    # Given a twin deployed and serving (moto in its own process)
    twin = Twin(tmp_path)
    try:
        twin.start()
        api = twin.serve()
        assert twin.moto is not None
        pid, endpoint = twin.moto.pid, twin.endpoint_url
        assert pid != os.getpid() and Path(f"/proc/{pid}").exists()
        with urllib.request.urlopen(f"{api}/health", timeout=10) as response:
            assert response.status in (200, 503)  # no model is published yet: degraded is an answer
    finally:
        # When it stops
        twin.stop()
    # Then moto's process is gone and its endpoint refuses connections
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)


def test_a_twin_whose_moto_died_reports_it(tmp_path: Path) -> None:
    # Given a deployed twin whose moto process is killed
    twin = Twin(tmp_path)
    try:
        twin.start()
        assert twin.moto is not None
        os.kill(twin.moto.pid, signal.SIGKILL)
        twin.moto.process.wait(timeout=30)
        # When the twin is used, Then each use says that moto's process died, and how
        for use in (twin.check, lambda: twin.client("s3"), lambda: twin.load_data(tmp_path)):
            with pytest.raises(
                MotoProcessDied, match=r"moto's server process \(pid \d+, .*killed by signal 9"
            ):
                use()
    finally:
        twin.stop()  # stopping a twin whose moto is already gone is still clean


def test_a_model_published_while_serving_reaches_every_worker(tmp_path: Path) -> None:
    # Given a trained twin serving from two workers
    generate(tmp_path / "shop", n_users=300, n_items=150, n_days=40, seed=11)
    twin = Twin(tmp_path, front_workers=2)
    try:
        twin.start()
        twin.load_data(tmp_path / "shop")
        first = twin.train_and_publish()["model_version"]
        api = twin.serve()
        assert isinstance(twin.front, FrontWorkers)
        before = twin.front.pids
        # When the scheduled path trains and publishes again
        second = twin.train_and_publish()
        # Then new workers serve the new model and the old ones are gone
        assert second["promote"] is True and second["model_version"] != first
        assert not set(before) & set(twin.front.pids)
        for _ in range(6):  # connections go to whichever worker accepts first: ask several times
            page = urllib.request.Request(
                f"{api}/users/u-swap/recommendations?k=5", headers={"x-api-key": str(twin.api_key)}
            )
            with urllib.request.urlopen(page, timeout=30) as response:
                assert json.loads(response.read())["model_version"] == second["model_version"]
        twin.check()
    finally:
        twin.stop()
