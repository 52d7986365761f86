"""The popularity-bias benchmark (``make bench``): the page's long-tail correction, without and with.

    python -m training.bench_popularity [--data DIR] [--out FILE] [--threads N]

On Online Retail (or ``--data``), with the training job's own split, fits and code:

1. the strength, chosen as the job chooses it (``training.tuning.long_tail``) on the validation window
   with the tuning's protocol (retrieval fitted before the ranker's window, the ranker learnt from it,
   retrieval refitted on the training window, the served pages of the validation window's shoppers), at the
   job's default values (the bench runs no search of the other knobs, so that it stays short);
2. the test window, as the job's evaluation scores it: retrieval on the training window, the ranker learnt
   from the validation window, retrieval refitted on training + validation, and for every evaluated shopper
   the served page (``training.evaluation.served_lists``) without the correction and with the chosen one.

Printed: NDCG@10, coverage@20 and long-tail@20 (the share of the top-20 slots given to items outside the
most popular fifth of the catalogue) on the test window without and with, and PASS when the chosen
correction keeps NDCG@10 within ``MAX_NDCG_DROP`` of none while coverage@20 and the long-tail share rise
(issue 11's target), MISS otherwise. Figures, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from merchandiser.reranking import LONG_TAIL
from merchandiser.retrieval import proposals
from merchandiser.settings import RetailerRules
from merchandiser.shopper import state_from_rows
from training.benchmark import BENCH_DIR, retail_dir
from training.channels import read_channels
from training.evaluation import evaluation_targets, score_models, served_lists
from training.fit import (
    Hyperparameters,
    build_catalog,
    epoch_seconds,
    fit_retrieval,
    user_segments,
    with_ranker,
)
from training.ranker import train_ranker
from training.split import temporal_split
from training.tuning import Budget, ServingChoices
from training.tuning.long_tail import MAX_NDCG_DROP, METRICS, long_tail
from training.tuning.search import Search

WITHOUT, WITH = "without", "with"


def benchmark(data_dir: Path, hp: Hyperparameters) -> dict[str, Any]:
    channels = read_channels(
        data_dir,
        data_dir if any(data_dir.glob("items*")) else None,
        data_dir if any(data_dir.glob("users*")) else None,
    )
    interactions, catalog = channels.interactions, build_catalog(channels.items)
    split = temporal_split(interactions, hp.test_fraction)
    validation_start, test_start = epoch_seconds(split.validation_start), epoch_seconds(split.test_start)
    segments = user_segments(channels.users)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    print("validation: the strength, as the training job chooses it ...", flush=True)
    ranker_start = validation_start - (test_start - validation_start)  # as the job's tuning
    search = Search(
        split.train,
        split.validation,
        catalog,
        validation_start,
        ranker_start,
        hp,
        channels.users,
        segments,
        Budget(trials=1, seconds=0.0, scaled=False),  # no search: the job's default values
        time.process_time,
    )
    fit = search.fit(hp)
    _, pages = search.pages(fit, search.ranker(fit, hp))
    choice = long_tail(search, pages, ServingChoices())
    timings["validation"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    print(f"test: strength {choice['strength']}, without and with ...", flush=True)
    # the job's steps 1 and 2: the search's late fit is retrieval on the training window (as the job's)
    ranker, _ = train_ranker(fit.late, fit.late_histories, split.validation, validation_start, hp, segments)
    del search, fit, pages
    before_test = interactions[interactions["timestamp"] < split.test_start]
    retrieval, histories = fit_retrieval(before_test, catalog, test_start, hp, channels.users)
    pipeline = with_ranker(retrieval, ranker)
    users, relevant = evaluation_targets(split.test, pipeline, histories, hp)
    strengths = {WITHOUT: 0.0, WITH: float(choice["strength"])}
    lists: dict[str, dict[str, list[int]]] = {name: {} for name in strengths}
    retailer = RetailerRules()
    for user in users:
        history = histories.get(user)
        if history is None:
            state = state_from_rows(pipeline.items, {}, [], frozenset(), None, segments.get(user, ()))
        else:
            state = history.state(pipeline.items)
        found = proposals(pipeline.items, state, hp.candidates)
        for name, strength in strengths.items():
            # what the job writes into the model's manifest, read by ``page_scores`` as serving reads it
            pipeline.items.manifest[LONG_TAIL] = {"engaged": strength > 0, "strength": strength}
            _, lists[name][user] = served_lists(
                pipeline, state, test_start, hp.candidates, user, retailer, found
            )
    scored = score_models(lists, relevant, pipeline, histories)
    timings["test"] = round(time.perf_counter() - started, 1)
    test = {name: {metric: round(float(scored[name][metric]), 6) for metric in METRICS} for name in lists}
    return {
        "data": str(data_dir),
        "users": scored[WITHOUT]["users"],
        "choice": choice,
        "test": test,
        "target": verdict(test[WITHOUT], test[WITH]),
        "max_ndcg_drop": MAX_NDCG_DROP,
        "seconds": timings,
    }


def verdict(without: dict[str, float], with_: dict[str, float]) -> dict[str, Any]:
    """PASS when ``with_`` keeps NDCG@10 within ``MAX_NDCG_DROP`` of ``without`` and raises both coverage@20
    and the long-tail share; the relative changes."""
    changes = {metric: relative(with_[metric], without[metric]) for metric in METRICS}
    met = (
        changes["ndcg@10"] >= -MAX_NDCG_DROP
        and with_["coverage@20"] > without["coverage@20"]
        and with_["long_tail@20"] > without["long_tail@20"]
    )
    return {"met": met, "changes": {metric: round(change, 6) for metric, change in changes.items()}}


def relative(value: float, base: float) -> float:
    return (value - base) / base if base else 0.0


def print_table(result: dict[str, Any]) -> None:
    choice = result["choice"]
    print(f"\nlong-tail correction on {result['data']}")
    print(f"validation (the job's choice): {choice['reason']}")
    print(f"{'strength':>9}{'NDCG@10':>10}{'cov@20':>9}{'tail@20':>9}")
    for strength, row in choice["validation"].items():
        mark = "  <- chosen" if float(strength) == choice["strength"] else ""
        print(
            f"{strength:>9}{row['ndcg@10']:>10.4f}{row['coverage@20']:>9.3f}{row['long_tail@20']:>9.3f}{mark}"
        )
    print(f"\ntest window ({result['users']} shoppers), the served page:")
    print(f"{'':<20}{'NDCG@10':>10}{'cov@20':>9}{'tail@20':>9}")
    strengths = {WITHOUT: 0.0, WITH: choice["strength"]}
    for name, row in result["test"].items():
        label = f"{name} ({strengths[name]})"
        print(f"{label:<20}{row['ndcg@10']:>10.4f}{row['coverage@20']:>9.3f}{row['long_tail@20']:>9.3f}")
    target = result["target"]
    changes = target["changes"]
    print(
        f"{'change':<20}{changes['ndcg@10']:>+10.1%}{changes['coverage@20']:>+9.1%}"
        f"{changes['long_tail@20']:>+9.1%}"
    )
    print(
        f"target (NDCG@10 within -{MAX_NDCG_DROP:.0%}, coverage@20 and long-tail@20 up):"
        f" {'PASS' if target['met'] else 'MISS'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a training-channel dir (default: UCI Online Retail)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "popularity.json")
    args = parser.parse_args(argv)
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(args.threads))
    hp = replace(Hyperparameters(), threads=args.threads)
    result = benchmark(retail_dir(args.data), hp)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
