"""Publishing a trained model: the training job request, the quality gate, the live-model parameter, the
canary that moves the serving functions, and the publish and rollback steps that move production."""

from merchandiser.publishing.canary import (
    MODEL_RELEASE_VARIABLE,
    FunctionSwitch,
    ModelCanary,
    SwapError,
    appspec,
)
from merchandiser.publishing.engine import (
    ArchiveSize,
    EmrJob,
    archive_size,
    choose_engine,
    emr_job_run,
    model_artifact,
)
from merchandiser.publishing.gate import decide, drift_of
from merchandiser.publishing.jobs import (
    JOB_PREFIX,
    export_catalogue,
    job_name,
    job_output_uri,
    training_job_request,
)
from merchandiser.publishing.release import (
    LiveModel,
    NothingToRollBackError,
    canary_failed,
    production_manifest,
    production_pointer,
    publish,
    rollback,
    unpack,
    user_profiles,
)

__all__ = [
    "JOB_PREFIX",
    "MODEL_RELEASE_VARIABLE",
    "ArchiveSize",
    "EmrJob",
    "FunctionSwitch",
    "LiveModel",
    "ModelCanary",
    "NothingToRollBackError",
    "SwapError",
    "appspec",
    "archive_size",
    "canary_failed",
    "choose_engine",
    "decide",
    "drift_of",
    "emr_job_run",
    "export_catalogue",
    "job_name",
    "job_output_uri",
    "model_artifact",
    "production_manifest",
    "production_pointer",
    "publish",
    "rollback",
    "training_job_request",
    "unpack",
    "user_profiles",
]
