"""The benchmark's comparison of the pipeline with the tuned anchors, read from an evaluation.json."""

from __future__ import annotations

from typing import Any

from training.anchor_benchmark import anchor_targets, comparison


def scores(ndcg: float, recall: float, coverage: float) -> dict[str, float]:
    return {"ndcg@10": ndcg, "recall@20": recall, "coverage@20": coverage, "mrr": 0.5}


def evaluation(pipeline_ndcg: float) -> dict[str, Any]:
    return {
        "models": {
            "pipeline": scores(pipeline_ndcg, 0.2, 0.4),
            "popularity": scores(0.05, 0.05, 0.01),
            "pop_recent": scores(0.08, 0.1, 0.01),
            "ease_pop": scores(0.1, 0.25, 0.2),
        },
        "anchors": {
            "pop_recent": {"params": {"half_life_hours": 48.0}, "validation_ndcg@10": 0.07, "trials": 20,
                           "stopped_by": "trials"},
            "ease_pop": {"params": {"weight": 0.3}, "validation_ndcg@10": 0.09, "trials": 7,
                         "stopped_by": "time"},
            "ease": {"skipped": "too many items"},
        },
    }  # fmt: skip


def test_the_best_anchor_is_the_one_with_the_best_ndcg_and_each_metric_gets_its_ratio() -> None:
    # Given a pipeline at 0.12 NDCG@10 and two scored anchors, EASE + popularity the better, EASE skipped
    result = comparison(evaluation(0.12))
    # Then the ratios are the pipeline's over that anchor's on each metric, with its settings kept
    assert result["best_anchor"] == "ease_pop"
    assert (result["ratio_ndcg@10"], result["ratio_recall@20"]) == (1.2, 0.8)
    assert result["ratio_coverage@20"] == 2.0
    assert result["models"]["ease_pop"]["params"] == {"weight": 0.3}
    assert set(result["models"]) == {"pipeline", "pop_recent", "ease_pop"}  # not the untuned popularity
    assert result["skipped"] == {"ease": "too many items"}


def test_targets_are_1_15x_on_online_retail_and_1x_on_each_regime_with_the_distance_to_1_3x() -> None:
    # Given Online Retail at 1.2x and two regimes at 1.1x and 0.9x of their best anchor
    retail = comparison(evaluation(0.12))
    regimes = {"dense_repeat": comparison(evaluation(0.11)), "sparse_views": comparison(evaluation(0.09))}
    # When the targets are checked
    lines = anchor_targets(retail, regimes)
    # Then Online Retail and the first regime pass, the second misses, each saying how far 1.3x is
    assert [passed for passed, _ in lines] == [True, True, False]
    assert "ratio 1.200; the 1.3x goal is 0.100 away" in lines[0][1]
    assert "regime sparse_views" in lines[2][1] and "ratio 0.900" in lines[2][1]


def test_an_evaluation_without_tuned_anchors_misses_its_target() -> None:
    bare = {"models": {"pipeline": scores(0.1, 0.1, 0.1)}}
    assert anchor_targets(None, {"dense_repeat": comparison(bare)}) == [
        (False, "regime dense_repeat: no tuned anchor was scored")
    ]


def test_the_ratio_s_bootstrap_interval_says_whether_it_is_above_below_or_a_tie() -> None:
    # Given three shops whose job measured the ratio's interval against the best anchor
    def with_interval(ndcg: float, low: float, high: float) -> dict[str, Any]:
        paired = {"ease_pop": {"metric": "ndcg@10", "ratio": ndcg / 0.1, "ci95": [low, high], "users": 900}}
        return comparison({**evaluation(ndcg), "pipeline_vs_anchors": paired})

    shops = {"a": with_interval(0.12, 1.16, 1.24), "b": with_interval(0.099, 0.97, 1.03)}
    shops["c"] = with_interval(0.09, 0.85, 0.95)
    # When the targets are checked
    lines = [text for _, text in anchor_targets(None, shops)]
    # Then each line says where the interval lies against the target
    assert "(95% interval 1.160 to 1.240: above 1.00)" in lines[0]
    assert "(95% interval 0.970 to 1.030: holds 1.00)" in lines[1]
    assert "(95% interval 0.850 to 0.950: below 1.00)" in lines[2]
    assert shops["a"]["paired_ndcg@10"]["users"] == 900
