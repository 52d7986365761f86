"""The human report: Markdown with the tables and the three charts, from an evaluation dict."""

from __future__ import annotations

from pathlib import Path

from training.report import IMPORTANCE_CHART, METRICS_CHART, RECALL_CHART, write_report
from training.tuning.long_tail import choose_strength, off


def metrics(ndcg: float) -> dict:
    segment = {"ndcg@10": ndcg, "recall@20": ndcg, "users": 3}
    return {
        "ndcg@10": ndcg,
        "recall@20": ndcg,
        "recall@100": ndcg,
        "hit@10": ndcg,
        "mrr": ndcg,
        "coverage@20": 0.5,
        "diversity@10": 0.7,
        "recall_curve": {"5": ndcg / 2, "20": ndcg, "100": 2 * ndcg},
        "users": 3,
        "segments": {"warm_users": segment, "new_users": {"users": 0}, "new_items": segment},
    }


def test_report_compares_the_pipeline_with_the_best_baseline(tmp_path: Path) -> None:
    # Given an evaluation where the pipeline doubles the best baseline
    evaluation = {
        "model_version": "v1",
        "models": {"popularity": metrics(0.05), "als": metrics(0.1), "pipeline": metrics(0.2)},
        "ranker": {"feature_importance": {"als_score": 10.0, "trending_log": 30.0}},
    }
    # When the report is written
    path = write_report(evaluation, tmp_path)
    text = path.read_text()
    # Then it states the ratio, holds the tables, and every chart exists as a PNG
    assert "2.00x the best single model (als, 0.1000)" in text
    assert "| pipeline | 0.2000 |" in text and "| trending_log | 30.0000 |" in text
    assert "| popularity | 0.0500 / 0.0500 (3) | - |" in text
    for chart in (METRICS_CHART, RECALL_CHART, IMPORTANCE_CHART):
        assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_sets_the_pipeline_beside_each_tuned_anchor_with_its_chosen_settings(tmp_path: Path) -> None:
    # Given an evaluation with two tuned anchors, one better than the pipeline, and one skipped
    evaluation = {
        "models": {
            "popularity": metrics(0.05), "pipeline": metrics(0.2), "pop_recent": metrics(0.1),
            "ease_pop": metrics(0.25),
        },
        "anchors": {
            "pop_recent": {"params": {"half_life_hours": 48.123456, "weighting": "count"},
                           "validation_ndcg@10": 0.11},
            "ease_pop": {"params": {"weight": 0.3}, "validation_ndcg@10": 0.27},
            "ease": {"skipped": "9000 items with events exceed ease_max_items=6000"},
        },
    }  # fmt: skip
    # When the report is written
    text = write_report(evaluation, tmp_path).read_text()
    # Then it gives the ratio to the best anchor and a row per anchor with its settings or why it is missing
    assert "Pipeline NDCG@10 0.2000 is 0.800x the best tuned anchor (ease_pop, 0.2500)" in text
    assert (
        "| pop_recent | 0.1000 | 0.1000 | 0.5000 | 0.1100 | half_life_hours=48.12, weighting=count |" in text
    )
    assert "| ease | - | - | - | - | skipped: 9000 items with events exceed ease_max_items=6000 |" in text


def test_report_prints_the_long_tail_strength_and_its_validation_figures(tmp_path: Path) -> None:
    # Given an evaluation whose job chose a long-tail strength of 0.1 on validation
    record = choose_strength(
        {
            0.0: {"ndcg@10": 0.1, "coverage@20": 0.40, "long_tail@20": 0.20},
            0.1: {"ndcg@10": 0.099, "coverage@20": 0.42, "long_tail@20": 0.25},
            0.2: {"ndcg@10": 0.09, "coverage@20": 0.45, "long_tail@20": 0.30},
        }
    )
    models = {"popularity": metrics(0.05), "als": metrics(0.1), "pipeline": metrics(0.2)}
    evaluation = {"models": models, "long_tail_correction": record}
    # When the report is written
    text = write_report(evaluation, tmp_path).read_text()
    # Then it names the strength, the rule and every strength's validation figures
    assert "Long-tail correction: **strength 0.1**" in text and "within 2% of none" in text
    assert "| 0.1 | 0.0990 | 0.4200 | 0.2500 |" in text and "| 0.2 | 0.0900 | 0.4500 | 0.3000 |" in text
    # And a job that chose none says so
    evaluation["long_tail_correction"] = off("no validation tuning: no window to choose it on")
    assert (
        "Long-tail correction: none (strength 0). no validation tuning"
        in write_report(evaluation, tmp_path).read_text()
    )
