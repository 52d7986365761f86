"""The pipeline against every tuned anchor, on Online Retail and on each regime (part of ``make bench``).

The training job tunes and scores the anchors itself (``training.anchors``, ``models.<anchor>`` and
``anchors`` in ``evaluation.json``), so each data set costs one run of the job: this module generates the
regimes (``training.datasets.regimes``), runs the job on each, and sets the pipeline's NDCG@10, Recall@20
and coverage@20 beside every tuned anchor's, with the anchor's chosen settings and the ratio pipeline /
best anchor (the anchor with the best NDCG@10). Targets (issue "Quality that adapts to the shop"): at
least 1.15x the best tuned anchor on Online Retail, not below any on a regime; the goal beyond is 1.3x.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.datasets import regimes
from training.metrics import interval_note

METRICS = ("ndcg@10", "recall@20", "coverage@20")
RETAIL_TARGET, REGIME_TARGET, GOAL = 1.15, 1.0, 1.3
# the job's steps of the anchors: the search and refit (before the tuning, whose fallback may serve one),
# then the test; a job before that split timed them as one step
ANCHOR_STEPS = (
    "0. tuned anchors: search on the validation window, refit",
    "2. tuned anchors on the test window",
    "2. tuned anchors: search on the validation window, refit, test",
)

# (data dir, work dir, threads) -> {"seconds", "peak_mib", "evaluation"}: ``benchmark.run_job``
JobRunner = Callable[[Path, Path, int], dict[str, Any]]


def comparison(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The pipeline and the tuned anchors of one ``evaluation.json``, and the ratios to the best anchor."""
    models, anchors = evaluation["models"], evaluation.get("anchors", {})
    scored = [name for name in anchors if name in models]
    rows: dict[str, dict[str, Any]] = {"pipeline": {metric: models["pipeline"][metric] for metric in METRICS}}
    for name in scored:
        rows[name] = {
            **{metric: models[name][metric] for metric in METRICS},
            "params": anchors[name].get("params", {}),
            "validation_ndcg@10": anchors[name].get("validation_ndcg@10"),
            "trials": anchors[name].get("trials"),
            "stopped_by": anchors[name].get("stopped_by"),
        }
    result: dict[str, Any] = {
        "models": rows,
        "skipped": {name: summary["skipped"] for name, summary in anchors.items() if "skipped" in summary},
        "job_timings": evaluation.get("timings", {}),
        "anchor_search": evaluation.get("anchor_search", {}),
    }
    if scored:
        best = max(scored, key=lambda name: rows[name]["ndcg@10"])
        result["best_anchor"] = best
        for metric in METRICS:
            reference = rows[best][metric]
            result[f"ratio_{metric}"] = rows["pipeline"][metric] / reference if reference > 0 else None
        paired = (evaluation.get("pipeline_vs_anchors") or {}).get(best) or {}
        if paired.get("ci95"):
            result["paired_ndcg@10"] = paired
    return result


def run_regimes(names: list[str], scale: float, threads: int, run_job: JobRunner, bench_dir: Path) -> dict:
    """Each regime generated once (kept under ``bench_dir``) and trained by the whole job."""
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        data_dir = bench_dir / "regimes" / f"{name}-x{scale:g}"
        summary_file = data_dir / "summary.json"
        if not summary_file.exists():
            print(f"generating the {name} regime (scale {scale:g}) ...", flush=True)
            summary_file.parent.mkdir(parents=True, exist_ok=True)
            summary = regimes.generate(name, data_dir, scale)
            summary_file.write_text(json.dumps(summary, indent=2))
        summary = json.loads(summary_file.read_text())
        print(f"training job on the {name} regime ({summary['rows']} events) ...", flush=True)
        job = run_job(data_dir, bench_dir / "regimes" / f"{name}-x{scale:g}-job", threads)
        results[name] = {
            **comparison(job["evaluation"]),
            "shop": summary,
            "job_seconds": job["seconds"],
            "job_peak_mib": job["peak_mib"],
        }
    return results


def print_comparison(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title}: the pipeline against the tuned anchors (test window; settings chosen on validation)")
    print(f"{'model':<11}{'NDCG@10':>9}{'Recall@20':>11}{'cov@20':>8}{'val NDCG':>10}  chosen settings")
    for name, row in result["models"].items():
        validation = row.get("validation_ndcg@10")
        settings = ", ".join(f"{key}={_short(value)}" for key, value in row.get("params", {}).items())
        search = f" ({row['trials']} trials, stopped by {row['stopped_by']})" if "trials" in row else ""
        print(
            f"{name:<11}{row['ndcg@10']:>9.4f}{row['recall@20']:>11.4f}{row['coverage@20']:>8.3f}"
            f"{'-' if validation is None else f'{validation:.4f}':>10}  {settings}{search}"
        )
    for name, reason in result["skipped"].items():
        print(f"{name:<11}{'skipped':>9}  {reason}")
    if "best_anchor" in result:
        ratios = ", ".join(
            f"{metric} {result[f'ratio_{metric}']:.3f}" for metric in METRICS if result[f"ratio_{metric}"]
        )
        print(f"pipeline / best anchor ({result['best_anchor']}): {ratios}")
        if "paired_ndcg@10" in result:
            print(f"  ndcg@10 ratio{interval_note(result['paired_ndcg@10'])}")
    timings = result.get("job_timings", {})
    anchor_seconds = sum(timings[name] for name in ANCHOR_STEPS if name in timings)
    if anchor_seconds:
        total = sum(value for value in timings.values())
        print(f"job steps {total:.0f}s, of which the anchors' search, refit and test {anchor_seconds:.0f}s")


def anchor_targets(retail: dict[str, Any] | None, regime_results: dict[str, dict[str, Any]]) -> list:
    """PASS / MISS lines: 1.15x on Online Retail, >= 1x on each regime; the distance to the 1.3x goal."""
    lines: list[tuple[bool, str]] = []
    cases = ([("Online Retail", retail, RETAIL_TARGET)] if retail else []) + [
        (f"regime {name}", result, REGIME_TARGET) for name, result in regime_results.items()
    ]
    for label, result, target in cases:
        ratio = result.get("ratio_ndcg@10")
        if ratio is None:
            lines.append((False, f"{label}: no tuned anchor was scored"))
            continue
        lines.append(
            (
                ratio >= target,
                f"{label}: pipeline NDCG@10 >= {target:.2f} x best tuned anchor ({result['best_anchor']}): "
                f"ratio {ratio:.3f}{verdict_of_interval(result.get('paired_ndcg@10'), target)}; the"
                f" {GOAL:.1f}x goal is {max(GOAL - ratio, 0.0):.3f} away",
            )
        )
    return lines


def verdict_of_interval(paired: dict[str, Any] | None, target: float) -> str:
    """What the ratio's bootstrap interval says of ``target``: above it, below it, or holding it."""
    if not paired or not paired.get("ci95"):
        return ""
    low, high = paired["ci95"]
    where = "above" if low > target else "below" if high < target else "holds"
    return f" (95% interval {low:.3f} to {high:.3f}: {where} {target:.2f})"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
