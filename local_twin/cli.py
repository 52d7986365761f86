"""The ``merchandiser`` command: demo, up (the local twin serving the API), console, simulate, experiment,
retrain and train."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

from local_twin import console_server, experiment_cli, simulator
from local_twin.front_workers import FRONT_WORKERS, FrontWorkerError
from local_twin.moto_process import MotoProcessDied
from local_twin.script_mode import channel_dirs, run_script_mode
from training.datasets.synthetic_shop import generate

CHECK_SECONDS = 1.0  # how soon `up` notices that moto's process or a front worker died


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
        twin = Twin(Path(work), api_port=args.port, log_level="INFO", front_workers=args.workers)
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
                while not stop.wait(CHECK_SECONDS):
                    twin.check()
            return 0
        except (MotoProcessDied, FrontWorkerError) as died:
            print(f"merchandiser: {died}", file=sys.stderr, flush=True)
            return 1
        finally:
            twin.stop()


RETRAIN_TIMEOUT_SECONDS = 3600.0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Asks the running twin (its control endpoint, from the state file) to run the daily jobs now."""
    state = json.loads(args.state.read_text())
    if not state.get("control_url"):
        raise SystemExit(f"merchandiser: {args.state} names no control_url: is `merchandiser up` running?")
    request = urllib.request.Request(
        f"{state['control_url']}/retrain",
        data=json.dumps({"hyperparameters": pairs(args.hyperparameters)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=RETRAIN_TIMEOUT_SECONDS) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(f"merchandiser: retrain failed: {error.read().decode(errors='replace')}") from error
    except urllib.error.URLError as error:
        raise SystemExit(
            f"merchandiser: the twin at {state['control_url']} does not answer: {error}"
        ) from error
    evaluation = result.pop("evaluation", {})
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    erasure = result.get("erasure", {})
    print(
        f"archive eraser: {erasure.get('objects_rewritten', 0)} objects rewritten,"
        f" {erasure.get('records_removed', 0)} records removed ({erasure.get('tombstones', 0)} erasures)"
    )
    pipeline = evaluation.get("models", {}).get("pipeline", {}).get("ndcg@10")
    print(
        f"model {result.get('model_version')}: pipeline ndcg@10 {pipeline}; promote={result.get('promote')}"
    )
    for reason in result.get("reasons", []):
        print(f"  {reason}")
    if args.output_dir is not None:
        print(f"wrote {args.output_dir / 'evaluation.json'}")
    return 0


def pairs(words: list[str]) -> dict[str, str]:
    """``--name value`` words as {name: value}; a name without its value is refused."""
    if len(words) % 2 or not all(word.startswith("--") for word in words[::2]):
        raise SystemExit(f"merchandiser: hyperparameters must be --name value pairs, got {' '.join(words)}")
    return {name.removeprefix("--"): value for name, value in zip(words[::2], words[1::2], strict=True)}


def cmd_train(args: argparse.Namespace) -> int:
    hyperparameters = {"engine": args.engine, **pairs(args.hyperparameters)}
    run_script_mode(channel_dirs(args.data), args.model_dir, args.output_dir, hyperparameters)
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
    up.add_argument(
        "--workers", type=int, default=FRONT_WORKERS, help="processes serving the API (0: the twin's own)"
    )
    up.set_defaults(run=cmd_up)
    simulator.add_parser(commands)
    console_server.add_parser(commands)
    retrain = commands.add_parser(
        "retrain",
        help="on the running twin: erase, train on what it has gathered, gate, publish and swap the model",
    )
    retrain.add_argument("--state", type=Path, required=True, help="the state file `merchandiser up` wrote")
    retrain.add_argument("--output-dir", type=Path, help="write the training job's evaluation.json here")
    retrain.set_defaults(run=cmd_retrain, hyperparameters=[])  # any other --name value goes to the job
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
    train.set_defaults(run=cmd_train, hyperparameters=[])  # any other --name value goes to the job
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = parser()
    # hyperparameters are the job's (training/train.py): whatever --name value this parser does not know
    args, extra = root.parse_known_args(argv)
    if extra and args.command not in ("train", "retrain"):
        root.error(f"unrecognized arguments: {' '.join(extra)}")
    args.hyperparameters = extra
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
