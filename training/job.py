"""The training job's steps: split, evaluate against baselines on the held-out future, refit, write.

Three fits, so that no ranker ever learns from labels its retrieval model has seen:

1. retrieval on ``train``; ranker labels from ``validation`` (part of its users stop the boosting);
2. retrieval on ``train + validation`` with the ranker of step 1 (as production pairs a ranker with
   the retrieval refitted after its labels) and the baselines are scored on ``test``, among them the
   tuned anchors (``training.anchors``: searched on ``validation``, refitted on ``train + validation``);
   the published ranker learns its labels from ``test``;
3. retrieval on all data, served with the ranker of step 2.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from merchandiser.catalog import ItemModel
from merchandiser.ranking import FEATURE_NAMES
from training.anchors import anchor_settings, tuned_anchors
from training.bundle import (
    data_fingerprint,
    library_versions,
    model_version,
    user_feature_records,
    write_model_dir,
)
from training.channels import Channels
from training.evaluation import evaluate, evaluate_anchors
from training.fit import (
    Hyperparameters,
    UserHistory,
    build_catalog,
    epoch_seconds,
    fit_retrieval,
    train_ranker,
    user_segments,
    with_ranker,
)
from training.production import score_production
from training.report import write_report
from training.split import temporal_split

FitRetrieval = Callable[..., tuple[ItemModel, dict[str, UserHistory]]]

logger = logging.getLogger(__name__)

EVALUATION = "evaluation.json"


@contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    logger.info("%s ...", name)
    yield
    timings[name] = round(time.perf_counter() - started, 3)
    logger.info("%s done in %.1fs", name, timings[name])


ENGINES = ("local", "spark")


def run(
    channels: Channels,
    hp: Hyperparameters,
    model_dir: Path,
    output_dir: Path,
    production_dir: Path | None = None,
) -> dict[str, Any]:
    """Runs every step and writes the model dir and ``evaluation.json``; returns the evaluation.

    ``hp.engine`` picks where retrieval is learnt: in this process, or on Spark (``training.spark_fit``);
    everything else is the same code on both, so both publish the same artifacts. ``production_dir``: the
    model in production (the ``production`` channel), scored on this job's test window beside the
    candidate for the quality gate (``training.production``)."""
    if hp.engine not in ENGINES:
        raise ValueError(f"unknown engine {hp.engine!r}: one of {', '.join(ENGINES)}")
    if hp.engine == "local":
        return _run(channels, hp, model_dir, output_dir, fit_retrieval, production_dir)
    from training.spark_fit import fit_retrieval_spark, spark_session

    spark = spark_session()
    try:
        return _run(channels, hp, model_dir, output_dir, partial(fit_retrieval_spark, spark), production_dir)
    finally:
        spark.stop()


def _run(
    channels: Channels,
    hp: Hyperparameters,
    model_dir: Path,
    output_dir: Path,
    fit_retrieval: FitRetrieval,
    production_dir: Path | None,
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    interactions = channels.interactions
    catalog = build_catalog(channels.items)
    split = temporal_split(interactions, hp.test_fraction)
    validation_start = epoch_seconds(split.validation_start)
    test_start = epoch_seconds(split.test_start)
    logger.info("split: %s", split.summary())
    segments = user_segments(channels.users)

    with step("1. retrieval on train", timings):
        retrieval_train, histories_train = fit_retrieval(
            split.train, catalog, validation_start, hp, channels.users
        )
    with step("1. ranker on the validation window", timings):
        ranker_eval, ranker_eval_info = train_ranker(
            retrieval_train, histories_train, split.validation, validation_start, hp, segments
        )
    before_test = interactions[interactions["timestamp"] < split.test_start]
    with step("2. retrieval on train + validation", timings):
        retrieval_before_test, histories_before_test = fit_retrieval(
            before_test, catalog, test_start, hp, channels.users
        )
    with step("2. evaluation on the test window", timings):
        pipeline = with_ranker(retrieval_before_test, ranker_eval)
        models = evaluate(pipeline, histories_before_test, split.test, test_start, hp, segments)
    with step("2. tuned anchors: search on the validation window, refit, test", timings):
        settings = anchor_settings(
            len(before_test),
            hp.anchor_trials,
            hp.anchor_seconds,
            hp.ease_max_items,
            hp.max_eval_users,
            hp.seed,
            hp.threads,
        )
        anchors = tuned_anchors(before_test, catalog, validation_start, test_start, settings)
        models.update(evaluate_anchors(anchors, pipeline, histories_before_test, split.test, hp))
        anchor_summaries = {name: result.summary() for name, result in anchors.items()}
        del anchors  # their windows hold dense EASE matrices: free them before the next fits
    gate = None
    if production_dir is not None:
        with step("2. production on the same test window", timings):
            gate = score_production(
                pipeline, production_dir, histories_before_test, split.test, test_start, hp, segments
            )
    with step("2. ranker on the test window", timings):
        ranker, ranker_info = train_ranker(
            retrieval_before_test, histories_before_test, split.test, test_start, hp, segments
        )
    end = epoch_seconds(interactions["timestamp"].max())
    with step("3. retrieval on all data", timings):
        retrieval_all, histories_all = fit_retrieval(interactions, catalog, end, hp, channels.users)

    created_at = datetime.now(UTC)
    data_sha256 = data_fingerprint(
        [path for paths in channels.report.get("files", {}).values() for path in paths]
    )
    version = model_version(created_at, data_sha256, hp.as_dict())
    data = {
        # from the events trained on (the gate of a later job scores this model only on events after these)
        "first_timestamp": interactions["timestamp"].min().isoformat(),
        "last_timestamp": interactions["timestamp"].max().isoformat(),
        "interactions": len(interactions),
        "users": int(interactions["user_id"].nunique()),
        "items": len(catalog),
        "sha256": data_sha256,
        "channels": {key: value for key, value in channels.report.items() if key != "files"},
    }
    evaluation = {
        "model_version": version,
        "models": models,
        "data": data,
        "split": split.summary(),
        "anchors": anchor_summaries,
        "anchor_search": {
            "trials_per_anchor": settings.trials,
            "seconds_per_anchor": round(settings.seconds, 1),
            "ease_max_items": settings.ease_max_items,
            "neighbour_max_pairs": settings.neighbour_max_pairs,
            "validation": "the window before the test window, as long as it; fit on what precedes it",
            "objective": "ndcg@10",
        },
        "ranker": {
            "evaluated": ranker_eval_info,
            "published": ranker_info,
            "feature_importance": ranker_eval_info.get("feature_importance", {}),
        },
        "protocol": (
            "temporal split; relevant = items a user interacted with in the test window minus items "
            "already purchased; histories cut at the test start; users without history get their "
            "segment's popularity (als) or the trending and segment popularity candidates (pipeline)"
        ),
    }
    manifest = {
        "model_version": version,
        "created_at": created_at.isoformat(),
        "libraries": library_versions(),
        "hyperparameters": hp.as_dict(),
        "als": {"factors": hp.factors, "regularization": hp.regularization, "alpha": hp.alpha},
        "features": list(FEATURE_NAMES),
        "data": data,
        "metrics": models,
        "ranker": ranker_info,
        "timings": timings,
    }
    if gate is not None:
        evaluation["gate"] = manifest["gate"] = gate
    with step("writing the model dir", timings):
        published = with_ranker(retrieval_all, ranker)
        records = user_feature_records(histories_all, channels.users, catalog.item_ids)
        write_model_dir(model_dir, published, manifest, records)
    evaluation["timings"] = timings
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION).write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    write_report(evaluation, output_dir)
    logger.info("model %s written to %s, evaluation to %s", version, model_dir, output_dir / EVALUATION)
    return evaluation
