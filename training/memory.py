"""The training process's memory, as the job's log and the benchmarks report it."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_mib() -> float:
    """Peak RSS of this process since it started (or exec'd), in MiB.

    ``getrusage``'s ``ru_maxrss`` is no good in a child: Linux carries the parent's peak over fork and
    exec, so every child of a big parent would report at least the parent's size. ``VmHWM`` is the peak
    of this process's own address space.
    """
    return _status_mib("VmHWM:") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def resident_mib() -> float | None:
    """This process's RSS now, in MiB (None where /proc is not there)."""
    return _status_mib("VmRSS:")


def _status_mib(field: str) -> float | None:
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024  # kB
    return None
