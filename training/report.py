"""The human report beside ``evaluation.json``: a Markdown page with matplotlib charts.

``report.md`` shows the gate metric against the baselines, every model's metrics, the per-segment
metrics, the recall@K curves and the ranker's feature importance; the charts are PNG files next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a training instance

import matplotlib.pyplot as plt

from merchandiser.retrieval import SOURCES
from training.evaluation import source_model
from training.metrics import interval_note

REPORT = "report.md"
METRICS_CHART = "metrics.png"
RECALL_CHART = "recall_at_k.png"
IMPORTANCE_CHART = "feature_importance.png"
TUNING_CHART = "tuning.png"
STAGE_COLOURS = {"retrieval": "tab:blue", "ranker": "tab:orange", "page": "tab:green"}
TABLE_METRICS = ("ndcg@10", "recall@20", "recall@100", "hit@10", "mrr", "coverage@20", "diversity@10")
SEGMENTS = ("warm_users", "new_users", "new_items")
COMBINED = ("pipeline", "ranker", "union")  # not single models: compared with the best single one
CURVE_MODELS = ("popularity", "als", "union", "ranker", "pipeline")
ANCHOR_METRICS = ("ndcg@10", "recall@20", "coverage@20")


def write_report(evaluation: dict[str, Any], output_dir: Path) -> Path:
    """Writes ``report.md`` and its charts into ``output_dir``; returns the report's path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    models: dict[str, dict[str, Any]] = evaluation["models"]
    importance: dict[str, float] = evaluation.get("ranker", {}).get("feature_importance", {})
    _metrics_chart(models, output_dir / METRICS_CHART)
    _recall_chart(models, output_dir / RECALL_CHART)
    if importance:
        _importance_chart(importance, output_dir / IMPORTANCE_CHART)
    pipeline = models["pipeline"]["ndcg@10"]
    best_name, best = max(
        ((name, metrics["ndcg@10"]) for name, metrics in models.items() if name not in COMBINED),
        key=lambda pair: pair[1],
    )
    data, split = evaluation.get("data", {}), evaluation.get("split", {})
    lines = [
        f"# Model {evaluation.get('model_version', '')}",
        "",
        f"Data: {data.get('interactions', '?')} interactions, {data.get('users', '?')} shoppers,"
        f" {data.get('items', '?')} items, {data.get('first_timestamp')} to {data.get('last_timestamp')}.",
        f"Test window from {split.get('test_start')} ({split.get('test_users')} shoppers,"
        f" {split.get('test_users_new')} new at the cut, {split.get('test_items_new')} new items).",
        "",
        f"**NDCG@10 of the pipeline: {pipeline:.4f}**, {_ratio(pipeline, best)} the best single model"
        f" ({best_name}, {best:.4f}) and {_ratio(pipeline, models['popularity']['ndcg@10'])} popularity.",
        "",
        f"![metrics]({METRICS_CHART})",
        "",
        "## Every model",
        "",
        _table(
            ["model", *TABLE_METRICS], [[name, *(models[name][m] for m in TABLE_METRICS)] for name in models]
        ),
        "",
        "## Candidate sources",
        "",
        _table(
            ["source", "share", "personal", "reason shown", "ndcg@10 alone", "recall@100 alone"],
            [
                [
                    source.name,
                    source.share,
                    "yes" if source.personal else "no",
                    source.reason,
                    *(
                        models.get(source_model(source.name), {}).get(m, "")
                        for m in ("ndcg@10", "recall@100")
                    ),
                ]
                for source in SOURCES
            ],
        ),
        "",
        "## Per segment (NDCG@10 / Recall@20, shoppers)",
        "",
        _table(
            ["model", *SEGMENTS],
            [
                [
                    name,
                    *(
                        _segment_cell(models[name].get("segments", {}).get(segment, {}))
                        for segment in SEGMENTS
                    ),
                ]
                for name in models
            ],
        ),
        "",
        "## Recall@K",
        "",
        f"![recall at K]({RECALL_CHART})",
        "",
    ]
    if importance:
        top = sorted(importance.items(), key=lambda pair: -pair[1])
        lines += [
            "## Ranker feature importance (total gain)",
            "",
            f"![feature importance]({IMPORTANCE_CHART})",
            "",
            _table(["feature", "gain"], [[name, value] for name, value in top]),
            "",
        ]
    paired = evaluation.get("pipeline_vs_anchors", {})
    lines += _anchors_section(models, evaluation.get("anchors", {}), paired)
    lines += _tuning_lines(evaluation.get("tuning") or {}, output_dir)
    lines += _fallback_lines(evaluation.get("fallback_to_anchor") or {})
    lines += _long_tail_lines(evaluation.get("long_tail_correction") or {})
    gate = evaluation.get("gate")
    if gate:
        lines += [
            "## Quality gate",
            "",
            f"Decision: **{gate.get('decision')}**. {gate.get('reason', '')}",
            "",
        ]
    path = output_dir / REPORT
    path.write_text("\n".join(lines))
    return path


def _anchors_section(
    models: dict[str, dict[str, Any]], anchors: dict[str, dict[str, Any]], paired: dict[str, dict[str, Any]]
) -> list[str]:
    """The pipeline beside every tuned anchor: test metrics, the validation score and the chosen settings;
    ``paired``: the ratios' bootstrap intervals (``evaluation.json``'s ``pipeline_vs_anchors``)."""
    if not anchors:
        return []
    scored = [name for name in anchors if name in models]
    rows = [["pipeline", *(models["pipeline"][metric] for metric in ANCHOR_METRICS), "-", "-"]]
    for name, summary in anchors.items():
        if name not in models:
            rows.append([name, "-", "-", "-", "-", f"skipped: {summary.get('skipped', '')}"])
            continue
        params = ", ".join(f"{key}={_short(value)}" for key, value in summary.get("params", {}).items())
        validation = summary.get("validation_ndcg@10")
        rows.append(
            [name, *(models[name][metric] for metric in ANCHOR_METRICS),
             "-" if validation is None else float(validation), params]
        )  # fmt: skip
    lines = ["## Against tuned anchors", ""]
    if scored:
        best = max(scored, key=lambda name: models[name]["ndcg@10"])
        pipeline, anchor = models["pipeline"]["ndcg@10"], models[best]["ndcg@10"]
        # three decimals: the targets (1.15x, 1.3x) must not be met by rounding
        ratio = f"{pipeline / anchor:.3f}x" if anchor > 0 else "n/a vs"
        lines += [
            f"Pipeline NDCG@10 {pipeline:.4f} is {ratio} the best tuned anchor ({best},"
            f" {anchor:.4f}){interval_note(paired.get(best))}. Each anchor's settings were chosen on the"
            " validation window (NDCG@10 there), then refitted on the whole training window.",
            "",
        ]
    header = ["model", *ANCHOR_METRICS, "validation ndcg@10", "chosen settings"]
    return [*lines, _table(header, rows), ""]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "n/a vs"


def _segment_cell(metrics: dict[str, Any]) -> str:
    if not metrics.get("users"):
        return "-"
    return f"{metrics['ndcg@10']:.4f} / {metrics['recall@20']:.4f} ({metrics['users']})"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _metrics_chart(models: dict[str, dict[str, Any]], path: Path) -> None:
    names = list(models)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for axis, metric in zip(axes, ("ndcg@10", "recall@20", "coverage@20"), strict=True):
        values = [models[name][metric] for name in names]
        colours = ["tab:red" if name == "pipeline" else "tab:gray" for name in names]
        axis.barh(names, values, color=colours)
        axis.set_title(metric)
        axis.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _recall_chart(models: dict[str, dict[str, Any]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for name in CURVE_MODELS:
        curve = models.get(name, {}).get("recall_curve", {})
        if curve:
            ks = sorted(curve, key=int)
            axis.plot([int(k) for k in ks], [curve[k] for k in ks], marker="o", label=name)
    axis.set_xscale("log")
    axis.set_xlabel("K")
    axis.set_ylabel("recall@K")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _importance_chart(importance: dict[str, float], path: Path) -> None:
    top = sorted(importance.items(), key=lambda pair: -pair[1])[:20]
    figure, axis = plt.subplots(figsize=(7, 6))
    axis.barh([name for name, _ in top], [value for _, value in top], color="tab:blue")
    axis.invert_yaxis()
    axis.set_xlabel("total gain")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _tuning_lines(tuning: dict[str, Any], output_dir: Path) -> list[str]:
    """The validation search: its chart (score per trial, best so far), stages and chosen values."""
    if not tuning.get("enabled"):
        reason = tuning.get("reason", "")
        return ["## Validation tuning", "", f"Off ({reason}).", ""] if tuning else []
    trials: list[dict[str, Any]] = tuning.get("trials", [])
    if trials:
        _tuning_chart(trials, output_dir / TUNING_CHART)
    budget = tuning.get("budget", {})
    chosen = tuning.get("chosen", {})
    lines = [
        "## Validation tuning",
        "",
        f"{tuning.get('objective', '')}: **{tuning.get('default_ndcg@10', 0):.4f} with the defaults,"
        f" {tuning.get('best_ndcg@10', 0):.4f} with the chosen values**, {len(trials)} trials in"
        f" {tuning.get('seconds', 0):.1f} s CPU ({tuning.get('wall_seconds', 0):.1f} s wall); budget"
        f" {budget.get('trials')} trials, {budget.get('seconds')} s ({budget.get('seconds_rule', '')}).",
        f"Protocol: {tuning.get('protocol', '')}.",
        "",
    ]
    if trials:
        lines += [f"![tuning]({TUNING_CHART})", ""]
    lines += [
        _table(
            ["stage", "trials", "of", "stopped by", "default ndcg@10", "best ndcg@10", "CPU s"],
            [
                [
                    stage,
                    values.get("trials"),
                    values.get("budget_trials"),
                    values.get("stopped_by"),
                    values.get("default_ndcg@10"),
                    values.get("best_ndcg@10"),
                    values.get("seconds"),
                ]
                for stage, values in tuning.get("stages", {}).items()
            ],
        ),
        "",
        "Chosen values (those that differ from the job's):",
        "",
        _table(
            ["value", "chosen"],
            [[name, value] for name, value in chosen.get("hyperparameters", {}).items()]
            + [[f"share of {name}", share] for name, share in chosen.get("source_shares", {}).items()]
            + [[name, value] for name, value in chosen.get("page_rules", {}).items()],
        ),
        "",
    ]
    return lines


def _fallback_lines(fallback: dict[str, Any]) -> list[str]:
    if not fallback:
        return []
    validation = {k: v for k, v in fallback.get("validation", {}).items() if k != "options"}
    what = (
        "a personal anchor (scored from each shopper's history)"
        if fallback.get("kind") == "personal"
        else "a simple list"
    )
    decision = (
        f"**engaged**: the page serves {what}, {fallback.get('anchor')}, blended with weight"
        f" {fallback.get('weight')}"
        if fallback.get("engaged")
        else "not engaged"
    )
    settings = ", ".join(f"{key}={value}" for key, value in (fallback.get("params") or {}).items())
    lines = [
        "## Never worse than the best simple list",
        "",
        f"Fallback to the best servable anchor: {decision}. {fallback.get('reason', '')}.",
        *(["", f"Its tuned settings: {settings}."] if fallback.get("engaged") and settings else []),
        "",
        _table(["NDCG@10", *validation], [["validation", *validation.values()]]),
        "",
    ]
    test = fallback.get("test", {})
    if test:
        lines += [_table(["NDCG@10", *test], [["test", *test.values()]]), ""]
    options = fallback.get("validation", {}).get("options", {})
    if options:
        lines += [_table(["option", "validation NDCG@10"], [[k, v] for k, v in options.items()]), ""]
    return lines


def _long_tail_lines(record: dict[str, Any]) -> list[str]:
    """The long-tail correction the job chose (``training.tuning.long_tail``) and its validation figures."""
    if not record:
        return []
    decision = (
        f"**strength {record.get('strength')}** (the page's scores less that many standardised log"
        " popularities)"
        if record.get("engaged")
        else "none (strength 0)"
    )
    lines = [
        "## Popularity bias: the long-tail correction",
        "",
        f"Long-tail correction: {decision}. {record.get('reason', '')}.",
        "",
    ]
    if record.get("rule"):
        lines += [f"Chosen as {record['rule']}.", ""]
    validation = record.get("validation", {})
    if validation:
        metrics = ["ndcg@10", "coverage@20", "long_tail@20"]
        rows = [
            [strength, *(row.get(metric, "-") for metric in metrics)] for strength, row in validation.items()
        ]
        lines += [_table(["strength (validation)", *metrics], rows), ""]
    return lines


def _tuning_chart(trials: list[dict[str, Any]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    numbers = [trial["number"] for trial in trials]
    values = [trial["ndcg@10"] for trial in trials]
    for stage, colour in STAGE_COLOURS.items():
        xs = [trial["number"] for trial in trials if trial["stage"] == stage]
        ys = [trial["ndcg@10"] for trial in trials if trial["stage"] == stage]
        if xs:
            axis.scatter(xs, ys, color=colour, label=f"{stage} trial", s=18)
    best = [max(values[: position + 1]) for position in range(len(values))]
    axis.step(numbers, best, where="post", color="black", label="best so far")
    axis.set_xlabel("trial")
    axis.set_ylabel("served page NDCG@10 (validation)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
