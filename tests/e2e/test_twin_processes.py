"""The twin's processes: stopping the twin ends moto; a twin whose moto died says so; a model published
while the front's workers serve reaches all of them, and no page either generation served is lost."""

from __future__ import annotations

import gzip
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


def page(api: str, twin: Twin, user: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{api}/users/{user}/recommendations?k=5", headers={"x-api-key": str(twin.api_key)}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def archived_pages(twin: Twin) -> set[str]:
    """The recommendation ids of the impression records in the twin's archive."""
    s3, bucket = twin.client("s3"), twin.state()["artifacts_bucket"]
    found: set[str] = set()
    for listing in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="impressions/"):
        for entry in listing.get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
            found |= {json.loads(line)["recommendation_id"] for line in body.splitlines() if line.strip()}
    return found


def test_a_model_published_while_serving_reaches_every_worker_and_no_page_is_lost(tmp_path: Path) -> None:
    # Given a trained twin serving from two workers, which served a few pages
    generate(tmp_path / "shop", n_users=300, n_items=150, n_days=40, seed=11)
    twin = Twin(tmp_path, front_workers=2)
    try:
        twin.start()
        twin.load_data(tmp_path / "shop")
        first = twin.train_and_publish()["model_version"]
        api = twin.serve()
        assert isinstance(twin.front, FrontWorkers)
        before = twin.front.pids
        served = {str(page(api, twin, f"u-before-{n}")["recommendation_id"]) for n in range(4)}
        # When the scheduled path trains and publishes again (the workers that served them are replaced)
        second = twin.train_and_publish()
        # Then new workers serve the new model and the old ones are gone
        assert second["promote"] is True and second["model_version"] != first
        assert not set(before) & set(twin.front.pids)
        for n in range(6):  # connections go to whichever worker accepts first: ask several times
            answer = page(api, twin, f"u-swap-{n}")
            assert answer["model_version"] == second["model_version"]
            served.add(str(answer["recommendation_id"]))
        # And once the twin settles, every page either generation served is an impression in the archive
        twin.settle()
        assert served <= archived_pages(twin)
        twin.check()
    finally:
        twin.stop()
