"""What the validation tuning costs and buys: the whole training job on one data dir with tuning off and
with its default budget, the pipeline's metrics on the test window and the job's time, side by side.

    python -m training.tuning_benchmark --data DIR [--out build/bench/tuning.json] [--name value ...]

Extra ``--name value`` pairs go to both jobs (hyperparameters). Each job is its own process (SageMaker
script mode, as ``make bench`` runs it): its CPU seconds are the child's user + system time, its wall
seconds the machine's (on a busy shared machine only the CPU seconds compare). Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from training.anchors import ANCHOR_NAMES

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS = {"untuned": ["--tuning-trials", "0"], "tuned": []}
METRICS = ("ndcg@10", "recall@20", "coverage@20")


def run_job(data: Path, work: Path, extra: list[str]) -> dict[str, Any]:
    """One training job in a child process: its evaluation and its CPU and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "training" / "train.py"),
            "--data",
            str(data),
            "--model-dir",
            str(work / "model"),
            "--output-dir",
            str(work / "output"),
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    evaluation = json.loads((work / "output" / "evaluation.json").read_text())
    return {
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "evaluation": evaluation,
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    evaluation = result["evaluation"]
    models = evaluation["models"]
    tuning = evaluation.get("tuning", {})
    return {
        "cpu_seconds": result["cpu_seconds"],
        "wall_seconds": result["wall_seconds"],
        "tuning_cpu_seconds": tuning.get("seconds"),
        "validation": {key: tuning.get(key) for key in ("default_ndcg@10", "best_ndcg@10")},
        "pipeline": {metric: round(models["pipeline"][metric], 4) for metric in METRICS},
        "ranker": {metric: round(models["ranker"][metric], 4) for metric in METRICS},
        "best_anchor": max(
            ((name, round(models[name]["ndcg@10"], 4)) for name in ANCHOR_NAMES if name in models),
            key=lambda pair: pair[1],
            default=("none", 0.0),
        ),
        "fallback_engaged": evaluation.get("fallback_to_anchor", {}).get("engaged"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench" / "tuning.json")
    args, extra = parser.parse_known_args(argv)
    work = args.out.parent / f"tuning-{args.data.name}"
    results = {
        name: summary(run_job(args.data, work / name, [*flags, *extra])) for name, flags in RUNS.items()
    }
    print(
        f"{'job':<10}{'CPU s':>9}{'wall s':>9}" + "".join(f"{m:>13}" for m in METRICS) + "  best simple list"
    )
    for name, values in results.items():
        pipeline = values["pipeline"]
        best = values["best_anchor"]
        print(
            f"{name:<10}{values['cpu_seconds']:>9.1f}{values['wall_seconds']:>9.1f}"
            + "".join(f"{pipeline[m]:>13.4f}" for m in METRICS)
            + f"  {best[0]} {best[1]:.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
