"""Running ``training/train.py`` under the SageMaker script-mode contract, locally.

Used by ``merchandiser train`` and by the twin's stand-in for SageMaker (moto records a training
job but runs nothing): channels become ``SM_CHANNEL_*`` directories, hyperparameters are passed as
``--name value`` and written to ``input/config/hyperparameters.json``, as SageMaker does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from merchandiser.publishing import job_output_uri
from training.s3_channels import download_prefix, upload_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = REPO_ROOT / "training" / "train.py"


def channel_dirs(data: Path) -> dict[str, Path]:
    """A data dir as training channels: interactions always, items and users when their files are there."""
    channels = {"interactions": data}
    for name in ("items", "users"):
        if any(data.glob(f"{name}.*")):
            channels[name] = data
    return channels


def run_script_mode(
    channels: dict[str, Path],
    model_dir: Path,
    output_dir: Path,
    hyperparameters: dict[str, str] | None = None,
    config_dir: Path | None = None,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    model_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    hyperparameters = hyperparameters or {}
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
    }
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = str(path)
    if config_dir is not None:
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    arguments = [
        part for name, value in sorted(hyperparameters.items()) for part in (f"--{name}", str(value))
    ]
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *arguments],
        env=env,
        check=True,
        text=True,
        capture_output=quiet,
    )


def job_output_dir(workdir: Path, job_name: str) -> Path:
    return workdir / job_name / "output" / "data"


def run_training_job(
    sagemaker: Any, s3: Any, job_name: str, workdir: Path, quiet: bool = False
) -> dict[str, Any]:
    """Does what SageMaker would for a job moto has recorded; returns the EventBridge state-change event.

    The job's output data (evaluation.json, the report) stays in ``job_output_dir(workdir, job_name)``."""
    job = sagemaker.describe_training_job(TrainingJobName=job_name)
    base = workdir / job_name
    channels = {}
    for channel in job["InputDataConfig"]:
        path = base / "input" / "data" / channel["ChannelName"]
        path.mkdir(parents=True, exist_ok=True)
        if download_prefix(s3, channel["DataSource"]["S3DataSource"]["S3Uri"], path):
            channels[channel["ChannelName"]] = path
    hyperparameters = {
        k: v for k, v in job.get("HyperParameters", {}).items() if not k.startswith("sagemaker_")
    }
    model_dir = base / "model"
    try:
        run_script_mode(
            channels,
            model_dir,
            job_output_dir(workdir, job_name),
            hyperparameters,
            base / "input" / "config",
            quiet,
        )
        artifact = upload_dir(
            s3, model_dir, job_output_uri(job["OutputDataConfig"]["S3OutputPath"], job_name)
        )
    finally:
        # SageMaker deletes the instance's storage after a job: its copy of the channels (shoppers' events
        # included, which an erasure must be able to reach) and the model dir do not outlive it here either
        for leftover in (base / "input" / "data", model_dir):
            shutil.rmtree(leftover, ignore_errors=True)
    return {
        "version": "0",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Training Job State Change",
        "detail": {
            "TrainingJobName": job_name,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": artifact},
        },
    }
