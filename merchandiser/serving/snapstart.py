"""SnapStart runtime hooks of the serving functions (imported by their handler modules).

Lambda runs the init phase, then ``before_snapshot``, when a version is published, and snapshots the
memory and disk: the live model is fetched and loaded there, so a container restored from the snapshot
serves its first request without paying the download or the load. ``after_restore`` rebuilds what must
not be shared by the many containers one snapshot resumes (connections, the impression log's thread).
Outside SnapStart (the twin, tests) the hooks are only registered, never run, and the model loads on
the first request as before.
"""

from __future__ import annotations

import logging

from snapshot_restore_py import register_after_restore, register_before_snapshot

from merchandiser.serving import runtime
from merchandiser.settings import ServingSettings

logger = logging.getLogger(__name__)


@register_before_snapshot
def before_snapshot() -> None:
    loaded = runtime.live_model(ServingSettings.from_env())
    version = None if loaded.model is None else loaded.model.version
    logger.info(
        "model loaded before the snapshot", extra={"model_version": version, "faults": sorted(loaded.faults)}
    )


@register_after_restore
def after_restore() -> None:
    runtime.after_restore()
