"""schemathesis over the generated OpenAPI document against ``merchandiser up``, with the storefront's key.

The twin runs in its own process (the public ``merchandiser up --state`` contract, key included), so the
fuzzer's erasures and catalogue writes never reach the other end-to-end tests' twin. Every response check
that concerns what the API answers runs: no 5xx, documented statuses, JSON content type, response schemas.
Admin routes get a SigV4-shaped Authorization header: the twin, like moto, accepts any credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lambdas.openapi import DOCUMENT
from stacks.constants import API_ROUTES
from training.datasets.synthetic_shop import generate

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# A short budget for CI: the coverage phase (boundaries, wrong types, other methods and media types) and
# a handful of random cases per operation; the stateful phase has no links to follow in this document.
MAX_EXAMPLES = 10
PHASES = "examples,coverage,fuzzing"
SEED = 1
STARTUP_TIMEOUT_S = 300
FUZZ_TIMEOUT_S = 300


class Output:
    """Drains a child's stdout (the twin logs every request) and notes when it starts serving."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.serving = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            if line.startswith("serving "):
                self.serving.set()
        self.serving.set()  # the process ended: stop waiting

    def tail(self, n: int = 30) -> str:
        return "".join(self.lines[-n:])


@pytest.fixture(scope="module")
def twin_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("fuzz")
    generate(work / "shop", n_users=300, n_items=150, n_days=40, seed=11)
    state_file = work / "twin.json"
    command = [sys.executable, "-m", "local_twin.cli", "up", "--data", str(work / "shop"), "--port", "0",
               "--state", str(state_file)]  # fmt: skip
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = Output(process)
    try:
        output.serving.wait(STARTUP_TIMEOUT_S)
        if process.poll() is not None or not state_file.is_file():
            pytest.fail(f"merchandiser up did not start serving:\n{output.tail()}")
        yield json.loads(state_file.read_text())
    finally:
        process.terminate()  # SIGTERM: `up` stops the twin and exits
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def sigv4_shaped_headers(now: datetime) -> list[str]:
    day = now.strftime("%Y%m%d")
    authorization = (
        f"Authorization: AWS4-HMAC-SHA256 Credential=testing/{day}/us-east-1/execute-api/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )
    return ["-H", authorization, "-H", f"X-Amz-Date: {now.strftime('%Y%m%dT%H%M%SZ')}"]


def schemathesis_binary() -> str:
    beside = Path(sys.executable).parent / "schemathesis"
    found = str(beside) if beside.is_file() else shutil.which("schemathesis")
    if not found:
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def test_the_state_file_carries_the_storefront_key(twin_state: dict[str, Any]) -> None:
    assert len(twin_state["api_key"]) >= 20 and twin_state["api_url"].startswith("http://127.0.0.1:")


def test_schemathesis_finds_nothing_with_the_key(twin_state: dict[str, Any], tmp_path: Path) -> None:
    # Given the generated OpenAPI document, the twin's URL, its key and a SigV4-shaped signature
    command = [
        schemathesis_binary(), "run", str(DOCUMENT), "--url", twin_state["api_url"],
        "-H", f"x-api-key: {twin_state['api_key']}", *sigv4_shaped_headers(datetime.now(UTC)),
        "--checks", CHECKS, "--generation-with-security-parameters", "false",
        "--phases", PHASES, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
        "--generation-database", "none", "--no-color", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    # When it generates requests for every operation
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=FUZZ_TIMEOUT_S
    )  # in tmp_path: whatever schemathesis leaves behind stays out of the checkout
    output = done.stdout + done.stderr
    print(*(line for line in output.splitlines() if "generated" in line or "passed in" in line), sep="\n")
    # Then it tested every operation and no check failed
    assert f"Tested: {len(API_ROUTES)}" in output, output[-3000:]
    assert done.returncode == 0, output[-6000:]
