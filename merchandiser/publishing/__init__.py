"""Publishing a trained model: the training job request, the quality gate, the blue/green swap of the
model layer, and the publish and rollback steps that move production."""

from merchandiser.publishing.gate import decide, drift_of
from merchandiser.publishing.jobs import JOB_PREFIX, export_catalogue, job_name, training_job_request
from merchandiser.publishing.release import (
    NothingToRollBackError,
    production_manifest,
    production_pointer,
    publish,
    rollback,
    unpack,
    user_profiles,
)
from merchandiser.publishing.swap import (
    LAYER_ZIP,
    FunctionSwitch,
    ModelSwap,
    SwapError,
    layer_name_of,
    with_layer,
    zip_model_layer,
)

__all__ = [
    "JOB_PREFIX",
    "LAYER_ZIP",
    "FunctionSwitch",
    "ModelSwap",
    "NothingToRollBackError",
    "SwapError",
    "decide",
    "drift_of",
    "export_catalogue",
    "job_name",
    "layer_name_of",
    "production_manifest",
    "production_pointer",
    "publish",
    "rollback",
    "training_job_request",
    "unpack",
    "user_profiles",
    "with_layer",
    "zip_model_layer",
]
