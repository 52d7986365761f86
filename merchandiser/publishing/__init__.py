"""Publishing a trained model: the training job request, the quality gate, the live-model parameter, the
canary that moves the serving functions, and the publish and rollback steps that move production."""

from merchandiser.publishing.canary import (
    MODEL_RELEASE_VARIABLE,
    FunctionSwitch,
    ModelCanary,
    SwapError,
    appspec,
)
from merchandiser.publishing.gate import decide, drift_of
from merchandiser.publishing.jobs import JOB_PREFIX, export_catalogue, job_name, training_job_request
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
    "FunctionSwitch",
    "LiveModel",
    "ModelCanary",
    "NothingToRollBackError",
    "SwapError",
    "appspec",
    "canary_failed",
    "decide",
    "drift_of",
    "export_catalogue",
    "job_name",
    "production_manifest",
    "production_pointer",
    "publish",
    "rollback",
    "training_job_request",
    "unpack",
    "user_profiles",
]
