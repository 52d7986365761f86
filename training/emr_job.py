"""The training job on EMR Serverless: the entry point of the Spark job run the schedule's state machine
starts for a shop past the single-machine size (``merchandiser.publishing.engine``).

    spark-submit --py-files source.zip training/emr_job.py --bucket B --job-name J --output-prefix P \
        --channel interactions=events/ --channel items=catalog/items/ ... [--hyperparameter name=value ...]

It does on the driver what SageMaker does around ``training/train.py``: copies each channel's prefix into
a local directory (File input mode), runs the same job with ``--engine spark`` in this process, so that
Spark's ALS and aggregations use the job run's session and executors, and packs the model dir as
``<P><J>/output/model.tar.gz``, SageMaker's layout, which the state machine hands to publish. The job's
output data (evaluation.json, the report) goes beside it as ``output.tar.gz``. Local copies are deleted
when it ends, as SageMaker deletes its instance's storage (an erased shopper must not outlive a job).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

if not __package__:
    # run by spark-submit as a file: the source zip (--py-files) is on the path, this file's folder is not
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from merchandiser.publishing import job_output_uri
from training.s3_channels import download_prefix, upload_dir

logger = logging.getLogger("training.emr")
CHANNELS = ("interactions", "items", "users", "impressions", "production")


def pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """``name=value`` arguments as a dict; a clear error for anything else."""
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"--{what} takes name=value, got {value!r}")
        parsed[name] = rest
    return parsed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Merchandiser's training job on EMR Serverless (Spark).")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--output-prefix", required=True, help="training-output/: SageMaker's S3OutputPath")
    parser.add_argument("--channel", action="append", default=[], help="name=prefix (interactions required)")
    parser.add_argument("--hyperparameter", action="append", default=[], help="name=value for train.py")
    parser.add_argument("--work-dir", type=Path, default=None, help="local copies (default: a temp dir)")
    args = parser.parse_args(argv)
    args.channels = pairs(args.channel, "channel")
    args.hyperparameters = pairs(args.hyperparameter, "hyperparameter")
    unknown = sorted(set(args.channels) - set(CHANNELS))
    if unknown or "interactions" not in args.channels:
        raise SystemExit(
            f"channels: interactions is required, known are {', '.join(CHANNELS)}; got {unknown}"
        )
    return args


def use_cluster_session() -> None:
    """The job run's own Spark session, so that ``training.spark_fit.spark_session`` joins it (the same
    master) instead of starting a local one."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.appName("merchandiser-training").getOrCreate()
    os.environ["SPARK_MASTER"] = str(session.sparkContext.master)


def run(
    args: argparse.Namespace,
    s3: Any,
    train: Callable[[Sequence[str], Mapping[str, str]], int],
) -> dict[str, Any]:
    """Channels in, ``train`` (``training.train.main`` with the given environment), the model out; the
    job's summary. ``train``'s non-zero exit is the job's failure (raised, so the job run fails)."""
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="merchandiser-emr-"))
    try:
        environ: dict[str, str] = {
            "SM_MODEL_DIR": str(work / "model"),
            "SM_OUTPUT_DATA_DIR": str(work / "output"),
        }
        copied: dict[str, int] = {}
        for channel, prefix in sorted(args.channels.items()):
            local = work / "input" / channel
            local.mkdir(parents=True, exist_ok=True)
            copied[channel] = download_prefix(s3, f"s3://{args.bucket}/{prefix}", local)
            if copied[channel]:  # an empty channel is absent, as SageMaker leaves it
                environ[f"SM_CHANNEL_{channel.upper()}"] = str(local)
        if not copied.get("interactions"):
            raise RuntimeError(f"no events under s3://{args.bucket}/{args.channels['interactions']}")
        for name in ("model", "output"):
            (work / name).mkdir(parents=True, exist_ok=True)
        # SageMaker's hyperparameters.json has no place here: every value comes on the command line
        arguments = ["--hyperparameters-json", str(work / "no-hyperparameters.json")]
        for name, value in sorted({**args.hyperparameters, "engine": "spark"}.items()):
            arguments += [f"--{name.replace('_', '-')}", value]
        code = train(arguments, environ)
        if code != 0:
            raise RuntimeError(f"training/train.py exited with {code}")
        output_uri = f"s3://{args.bucket}/{args.output_prefix}"
        artifact = upload_dir(s3, work / "model", job_output_uri(output_uri, args.job_name))
        upload_dir(s3, work / "output", job_output_uri(output_uri, args.job_name, "output.tar.gz"))
        return {"job": args.job_name, "model_artifact": artifact, "channels": copied}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_in_process(arguments: Sequence[str], environ: Mapping[str, str]) -> int:
    from training.train import main

    os.environ.update(environ)  # train.py reads its channels and dirs from SM_* as under SageMaker
    return main(list(arguments))


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    use_cluster_session()
    summary = run(args, boto3.client("s3"), train_in_process)
    logger.info("job %s done: %s", args.job_name, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
