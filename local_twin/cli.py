"""The ``merchandiser`` command: demo, up (the local twin serving the API), console, simulate, experiment and
train."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

from local_twin import console_server, experiment_cli, simulator
from local_twin.script_mode import channel_dirs, run_script_mode
from training.datasets.synthetic_shop import generate


def shop_dir(data: Path | None, workdir: Path) -> tuple[Path, str]:
    if data is not None:
        if not any(data.glob("interactions.*")):
            raise SystemExit(f"merchandiser: {data} holds no interactions.csv or interactions.parquet")
        return data, f"{data}"
    target = workdir / "synthetic-shop"
    summary = generate(target)
    return target, f"built-in synthetic shop (seed {summary['seed']}, {summary['sessions']:,} sessions)"


def cmd_demo(args: argparse.Namespace) -> int:
    from local_twin import demo

    with tempfile.TemporaryDirectory(prefix="merchandiser-demo-") as work:
        data, label = shop_dir(args.data, Path(work))
        return demo.run(data, Path(work), label)


def cmd_up(args: argparse.Namespace) -> int:
    from local_twin.twin import Twin

    with tempfile.TemporaryDirectory(prefix="merchandiser-twin-") as work:
        data, label = shop_dir(args.data, Path(work))
        twin = Twin(Path(work), api_port=args.port, log_level="INFO")
        try:
            twin.start()
            twin.load_data(data)
            print(f"training on {label} ...", flush=True)
            result = twin.train_and_publish()
            print(f"model {result['model_version']} promote={result['promote']}", flush=True)
            twin.serve()
            state = {**twin.state(), "data_dir": str(data.resolve())}  # the simulator's shoppers come from it
            if args.state:
                args.state.write_text(json.dumps(state, indent=2))
            print(json.dumps(state, indent=2), flush=True)
            print(f"serving {state['api_url']} (GET /health); Ctrl-C to stop", flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
            return 0
        finally:
            twin.stop()


def cmd_train(args: argparse.Namespace) -> int:
    channels = channel_dirs(args.data)
    hyperparameters = dict(zip(args.hyperparameters[::2], args.hyperparameters[1::2], strict=False))
    run_script_mode(
        channels,
        args.model_dir,
        args.output_dir,
        {"engine": args.engine, **{k.removeprefix("--"): v for k, v in hyperparameters.items()}},
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="merchandiser", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole system end to end on the local twin, then exit")
    demo.add_argument("--data", type=Path, help="a dir with interactions.csv (+ items.csv, users.csv)")
    demo.set_defaults(run=cmd_demo)
    up = commands.add_parser("up", help="serve the HTTP API from the local twin until interrupted")
    up.add_argument("--data", type=Path)
    up.add_argument("--port", type=int, default=8080)
    up.add_argument("--state", type=Path, help="write the API URL, AWS endpoint and resource names here")
    up.set_defaults(run=cmd_up)
    simulator.add_parser(commands)
    console_server.add_parser(commands)
    experiment_cli.add_parser(commands)
    train = commands.add_parser(
        "train", help="run training/train.py under the SageMaker script-mode contract"
    )
    train.add_argument("--data", type=Path, required=True)
    train.add_argument("--model-dir", type=Path, required=True)
    train.add_argument("--output-dir", type=Path, required=True)
    train.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="where retrieval is learnt: this process, or Spark (local mode here, EMR Serverless in AWS)",
    )
    train.add_argument("hyperparameters", nargs=argparse.REMAINDER, help="--name value pairs")
    train.set_defaults(run=cmd_train)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
