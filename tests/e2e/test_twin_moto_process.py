"""The twin and its moto process: stopping the twin ends moto; a twin whose moto died says so."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local_twin.moto_process import MotoProcessDied
from local_twin.twin import Twin

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
