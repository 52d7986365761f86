"""Training job entry point under the SageMaker script-mode contract.

    python training/train.py [--factors 64 --alpha 1.0 ...] [--data DIR --model-dir DIR --output-dir DIR]

Channels come from ``SM_CHANNEL_INTERACTIONS``, ``SM_CHANNEL_ITEMS`` and ``SM_CHANNEL_USERS`` (optional),
or from ``--data DIR`` holding all three; artifacts go to ``SM_MODEL_DIR`` and ``SM_OUTPUT_DATA_DIR``.
``SM_CHANNEL_PRODUCTION`` (or ``--production-dir``), when given, is the model in production: it is scored
on this job's test window beside the candidate, for the quality gate.
Hyperparameters: defaults < ``/opt/ml/input/config/hyperparameters.json`` < command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if not __package__:
    # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from merchandiser.store import MANIFEST
from training.channels import ChannelError, read_channels
from training.fit import Hyperparameters
from training.job import run

logger = logging.getLogger("training")

HYPERPARAMETERS_JSON = Path("/opt/ml/input/config/hyperparameters.json")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_args(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[argparse.Namespace, Hyperparameters]:
    parser = argparse.ArgumentParser(description="Train, evaluate and write a Merchandiser model.")
    parser.add_argument(
        "--data", type=Path, help="one directory with the interactions, items and users files"
    )
    parser.add_argument("--model-dir", type=Path, default=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument(
        "--output-dir", type=Path, default=Path(environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    )
    parser.add_argument("--hyperparameters-json", type=Path, default=HYPERPARAMETERS_JSON)
    parser.add_argument(
        "--production-dir",
        type=Path,
        default=Path(environ["SM_CHANNEL_PRODUCTION"]) if "SM_CHANNEL_PRODUCTION" in environ else None,
        help="the production model dir, scored on the same test window for the quality gate",
    )
    for name, default in Hyperparameters().as_dict().items():
        parser.add_argument(_option(name), dest=name, type=type(default), default=None)
    args = parser.parse_args(argv)

    values: dict[str, Any] = {}
    if args.hyperparameters_json.is_file():
        # SageMaker writes every value as a string; names may use - or _
        given = json.loads(args.hyperparameters_json.read_text())
        defaults = Hyperparameters().as_dict()
        for key, value in given.items():
            name = key.replace("-", "_")
            if name in defaults:
                values[name] = type(defaults[name])(value)
    for field in dataclasses.fields(Hyperparameters):
        if getattr(args, field.name) is not None:
            values[field.name] = getattr(args, field.name)
    return args, Hyperparameters(**values)


def channel_paths(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Path | None]:
    if args.data is not None:
        return {
            "interactions": args.data,
            "items": args.data if any(args.data.glob("items*")) else None,
            "users": args.data if any(args.data.glob("users*")) else None,
        }
    if "SM_CHANNEL_INTERACTIONS" not in environ:
        raise ChannelError("no interactions channel: set SM_CHANNEL_INTERACTIONS or pass --data DIR")
    return {
        name: Path(environ[f"SM_CHANNEL_{name.upper()}"]) if f"SM_CHANNEL_{name.upper()}" in environ else None
        for name in ("interactions", "items", "users")
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    environ = dict(os.environ)
    args, hp = parse_args(argv, environ)
    logger.info("hyperparameters: %s", hp.as_dict())
    started = time.perf_counter()
    try:
        paths = channel_paths(args, environ)
        interactions = paths["interactions"]
        assert interactions is not None
        channels = read_channels(interactions, paths["items"], paths["users"])
    except ChannelError as error:
        logger.error("cannot read the channels: %s", error)
        return 2
    logger.info("channels read in %.1fs", time.perf_counter() - started)
    production = args.production_dir
    if production is not None and not (production / MANIFEST).is_file():
        logger.warning("the production channel %s holds no model: no same-window comparison", production)
    evaluation = run(channels, hp, args.model_dir, args.output_dir, production)
    summary = {name: metrics["ndcg@10"] for name, metrics in evaluation["models"].items()}
    logger.info("done in %.1fs; ndcg@10 %s", time.perf_counter() - started, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
