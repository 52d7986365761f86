"""moto's server in its own process: started ready, stopped without a trace, dead and said so, gone with
the process that started it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local_twin.moto_process import MotoProcess, MotoProcessDied

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess.start()
    try:
        yield server
    finally:
        server.stop()


def exited_within(pid: int, seconds: float) -> bool:
    """Waits for a process that is not our child to end, without polling (a pidfd turns readable)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([handle], [], [], seconds)
        return bool(readable)
    finally:
        os.close(handle)


def refuses_connections(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError)
    return False


def test_a_started_moto_answers_on_loopback_from_another_process(moto: MotoProcess) -> None:
    # Given a moto process, When a client creates a table through its endpoint
    assert moto.endpoint.startswith("http://127.0.0.1:")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Then the table lives in that process, not in this one
    assert dynamodb.list_tables()["TableNames"] == ["t"]
    assert moto.pid != os.getpid() and moto.exit_code() is None
    moto.ensure_alive()


def test_stop_ends_and_reaps_the_process() -> None:
    # Given a running moto process
    server = MotoProcess.start()
    pid = server.pid
    # When it is stopped
    server.stop()
    # Then the process is gone (reaped, not a zombie) and its port refuses connections
    assert server.exit_code() is not None
    assert not Path(f"/proc/{pid}").exists()
    assert refuses_connections(server.endpoint)
    server.stop()  # a second stop is harmless


def test_a_killed_moto_is_reported_with_how_it_ended(moto: MotoProcess) -> None:
    # Given a moto process that something kills
    os.kill(moto.pid, signal.SIGKILL)
    moto.process.wait(timeout=30)
    # When the twin asks whether it is alive, Then the error says which process, where, and how it ended
    with pytest.raises(MotoProcessDied) as died:
        moto.ensure_alive()
    message = str(died.value)
    assert f"pid {moto.pid}" in message and moto.endpoint in message
    assert "killed by signal 9" in message


def test_moto_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    # Given a parent process that starts moto and then dies without stopping it
    script = (
        "import sys; from local_twin.moto_process import MotoProcess; "
        "server = MotoProcess.start(); print(server.pid, flush=True); sys.stdin.read()"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert parent.stdout is not None
    moto_pid = int(parent.stdout.readline())
    assert not exited_within(moto_pid, 0)
    # When the parent is killed
    parent.kill()
    parent.wait(timeout=30)
    # Then its moto process ends too
    assert exited_within(moto_pid, 30)
