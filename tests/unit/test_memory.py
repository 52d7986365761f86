"""The training job's memory figures: this process's own, not a parent's."""

from __future__ import annotations

import json
import subprocess
import sys

from training.memory import peak_mib, resident_mib

CHILD = "import json; from training.memory import peak_mib; print(json.dumps(peak_mib()))"


def test_the_peak_is_at_least_the_resident_size_and_grows_with_an_allocation() -> None:
    before = peak_mib()
    resident = resident_mib()
    assert resident is not None and 0 < resident <= before
    block = bytearray(64 * 1024 * 1024)  # 64 MiB, touched
    block[::4096] = b"x" * len(block[::4096])
    assert peak_mib() >= resident + 60


def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    ballast = bytearray(256 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    assert json.loads(child.stdout) < peak_mib() - 200
