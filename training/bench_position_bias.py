"""Figures of learning from what was shown, on simulated logs with a known truth (``make bench``):

    python -m training.bench_position_bias [--pages 4000] [--shoppers 1400] [--curve inverse_sqrt] [--seed 7]

Prints the estimated examination propensities beside the simulator's curve, the click ranker's fits
(naive, LightGBM position-debiased, IPS) scored on held-out pages and on the true relevance of every
shopper's candidates, and the counterfactual CTR of three re-orderings beside their true CTR; writes
``build/bench/position_bias.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from local_twin.simulation.logged_pages import FEATURES, LoggedPages, LoggedPagesConfig, simulate_logged_pages
from local_twin.simulation.shoppers import EXAMINATION_CURVES
from training.click_ranker import MODES, ClickLists, choose_click_ranker, fit_click_ranker
from training.counterfactual import counterfactual_ctr, positions_by_score
from training.metrics import page_ndcg
from training.position_bias import estimate_propensities

OUTPUT = Path("build/bench/position_bias.json")
PARAMS = {"learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 50, "deterministic": True,
          "force_row_wise": True, "num_threads": 1, "seed": 7, "verbosity": -1}  # fmt: skip
ROUNDS = 50


def true_ndcg(logs: LoggedPages, scores: np.ndarray, at: int = 10) -> float:
    frame = logs.candidates.assign(score=scores)
    discounts = 1.0 / np.log2(np.arange(2, at + 2))
    values = []
    for _, group in frame.groupby("user_id", sort=False):
        relevance = group["relevance"].to_numpy()
        top = relevance[np.argsort(-group["score"].to_numpy(), kind="stable")[:at]]
        values.append(top @ discounts / (np.sort(relevance)[::-1][:at] @ discounts))
    return float(np.mean(values))


def run(config: LoggedPagesConfig) -> dict[str, Any]:
    started = time.perf_counter()
    logs = simulate_logged_pages(config)
    simulated = time.perf_counter() - started
    estimate = estimate_propensities(logs.shown)
    estimated = time.perf_counter() - started - simulated
    regression_em = estimate_propensities(logs.shown, logs.shown[list(FEATURES)].to_numpy(np.float32))
    em_seconds = time.perf_counter() - started - simulated - estimated
    truth = logs.behaviour.examination(np.arange(len(estimate.propensities)))
    shown = logs.shown
    lists = ClickLists(
        shown[list(FEATURES)].to_numpy(np.float32),
        shown["clicked"].to_numpy(np.float32),
        shown["position"].to_numpy(np.int64),
        shown.groupby("page", sort=False).size().tolist(),
    )
    held = np.arange(len(lists)) % 5 == 0
    _, info = choose_click_ranker(
        lists.pages(~held), lists.pages(held), estimate, list(FEATURES), PARAMS, ROUNDS
    )
    features = logs.candidates[list(FEATURES)].to_numpy(np.float32)
    fit = lists.pages(~held).with_clicks()
    held_out = lists.pages(held)
    relevance = shown["relevance"].to_numpy()[np.repeat(held, lists.groups)]
    # Two truths: re-ordering held-out pages (what was shown: where the clicks can teach), and every
    # shopper's 60 candidates (mostly never shown: selection bias, which no position correction removes)
    on_pages: dict[str, float] = {
        "logged order": page_ndcg(relevance, held_out.groups, -held_out.positions * 1.0)
    }
    on_candidates: dict[str, float] = {}
    for mode in MODES:
        booster = fit_click_ranker(fit, mode, estimate, list(FEATURES), PARAMS, ROUNDS)
        on_pages[mode] = page_ndcg(relevance, held_out.groups, np.asarray(booster.predict(held_out.features)))
        on_candidates[mode] = true_ndcg(logs, np.asarray(booster.predict(features)))
    on_truth = {
        "held_out_pages": {name: round(value, 4) for name, value in on_pages.items()},
        "all_candidates": {name: round(value, 4) for name, value in on_candidates.items()},
    }
    policies = {
        "true relevance (better)": shown["relevance"].to_numpy(),
        "taste signal": shown["taste_signal"].to_numpy(),
        "reversed relevance (worse)": -shown["relevance"].to_numpy(),
    }
    counterfactual = {}
    for name, scores in policies.items():
        positions = positions_by_score(shown, scores)
        result = counterfactual_ctr(shown, positions, estimate)
        result["true_ctr"] = round(
            float(np.mean(logs.behaviour.examination(positions) * shown["relevance"])), 6
        )
        counterfactual[name] = result
    return {
        "config": {
            "pages": config.pages,
            "shoppers": config.shoppers,
            "curve": config.curve,
            "seed": config.seed,
        },
        "propensities": {
            "estimated": estimate.propensities,
            "true": [round(float(value), 6) for value in truth],
            "relative_error_1_5": [
                round(float(e / t - 1), 4)
                for e, t in zip(estimate.propensities[1:6], truth[1:6], strict=True)
            ],
            **estimate.summary(),
        },
        "regression_em": {
            "estimated": regression_em.propensities,
            "relative_error_1_5": [
                round(float(e / t - 1), 4)
                for e, t in zip(regression_em.propensities[1:6], truth[1:6], strict=True)
            ],
        },
        "click_ranker": {**info, "true_ndcg@10": on_truth},
        "counterfactual": counterfactual,
        "seconds": {
            "simulation": round(simulated, 2),
            "harvesting": round(estimated, 2),
            "regression_em": round(em_seconds, 2),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--shoppers", type=int, default=1400)
    parser.add_argument("--curve", choices=sorted(EXAMINATION_CURVES), default="inverse_sqrt")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    figures = run(
        LoggedPagesConfig(shoppers=args.shoppers, pages=args.pages, curve=args.curve, seed=args.seed)
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(figures, indent=2))
    propensities = figures["propensities"]
    print(
        f"position propensities ({propensities['method']}), {args.pages} pages of {args.shoppers} shoppers:"
    )
    print("  position   " + " ".join(f"{k:>6d}" for k in range(10)))
    print("  estimated  " + " ".join(f"{v:6.3f}" for v in propensities["estimated"][:10]))
    print("  true       " + " ".join(f"{v:6.3f}" for v in propensities["true"][:10]))
    print(f"  relative error at 1..5: {propensities['relative_error_1_5']}")
    em = figures["regression_em"]
    print("  regression EM " + " ".join(f"{v:6.3f}" for v in em["estimated"][:10]))
    print(f"  regression EM relative error at 1..5: {em['relative_error_1_5']}")
    ranker = figures["click_ranker"]
    print(f"click ranker: held-out IPS nDCG@10 {ranker['held_out_ips_ndcg@10']}, kept {ranker['kept']}")
    print(f"  true-relevance nDCG@10, held-out pages re-ordered: {ranker['true_ndcg@10']['held_out_pages']}")
    print(f"  true-relevance nDCG@10, every shopper's candidates: {ranker['true_ndcg@10']['all_candidates']}")
    for name, result in figures["counterfactual"].items():
        print(
            f"counterfactual CTR, {name}: {result['estimated_ctr']:.4f} [{result['ci_low']:.4f}, "
            f"{result['ci_high']:.4f}], true {result['true_ctr']:.4f}, logged {result['logged_ctr']:.4f}"
        )
    print(f"seconds: {figures['seconds']}; written to {OUTPUT}")


if __name__ == "__main__":
    main()
