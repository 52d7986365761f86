"""The training job's steps: split, tune on validation, evaluate against baselines on the held-out future,
refit, write.

0. the tuned anchors (``training.anchors``: searched on the validation window, refitted on ``train +
   validation``, scored on ``test`` in step 2); then validation tuning (``training.tuning``, unless its
   budget is 0): the knobs that matter chosen on the validation window, the simple lists it must never
   lose to, and the fallback to the best servable anchor if it does (a simple list, or item-kNN / RP3beta
   with the settings just searched, their weights then fitted into each retrieval model's signals);

Then three fits with the chosen values, so that no ranker ever learns from labels its retrieval model has
seen:

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
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from merchandiser.catalog import ItemModel
from merchandiser.ranking import FEATURE_NAMES
from merchandiser.reranking import FALLBACK
from merchandiser.store import HISTORIES_AT
from training.anchors import ANCHOR_NAMES, NEIGHBOUR_FAMILIES, AnchorResult, anchor_settings, tuned_anchors
from training.bundle import (
    data_fingerprint,
    library_versions,
    model_version,
    user_feature_records,
    write_model_dir,
)
from training.channels import Channels
from training.evaluation import against_anchors, evaluate, evaluate_anchors, evaluation_targets
from training.fit import (
    Hyperparameters,
    UserHistory,
    build_catalog,
    epoch_seconds,
    fit_retrieval,
    user_segments,
    with_ranker,
)
from training.impressions import (
    click_lists,
    compare_debiasing,
    labelled_impressions,
    no_position_evidence,
    position_evidence,
    window_pages,
)
from training.memory import peak_mib, resident_mib
from training.position_bias import estimate_propensities, flat_estimate
from training.production import score_production
from training.ranker import train_ranker
from training.report import write_report
from training.split import temporal_split
from training.tuning import ServingChoices, Tuned, budget_of, long_tail_off, tune, with_personal_anchor

FitRetrieval = Callable[..., tuple[ItemModel, dict[str, UserHistory]]]

logger = logging.getLogger(__name__)

EVALUATION = "evaluation.json"
ANCHOR_SEARCH_STEP = "0. tuned anchors: search on the validation window, refit"
ANCHOR_TEST_STEP = "2. tuned anchors on the test window"


@contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    logger.info("%s ...", name)
    yield
    timings[name] = round(time.perf_counter() - started, 3)
    logger.info(
        "%s done in %.1fs (RSS %.0f MiB, peak so far %.0f MiB)",
        name,
        timings[name],
        resident_mib() or 0.0,
        peak_mib(),
    )


ENGINES = ("local", "spark")


def run(
    channels: Channels,
    hp: Hyperparameters,
    model_dir: Path,
    output_dir: Path,
    production_dir: Path | None = None,
    impressions: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Runs every step and writes the model dir and ``evaluation.json``; returns the evaluation.

    ``impressions``: the shown items of the ``impressions`` channel (``training.impressions
    .read_impressions``): the position propensities and the counterfactual CTR come from them.

    ``hp.engine`` picks where retrieval is learnt: in this process, or on Spark (``training.spark_fit``);
    everything else is the same code on both, so both publish the same artifacts. ``production_dir``: the
    model in production (the ``production`` channel), scored on this job's test window beside the
    candidate for the quality gate (``training.production``)."""
    if hp.engine not in ENGINES:
        raise ValueError(f"unknown engine {hp.engine!r}: one of {', '.join(ENGINES)}")
    if hp.engine == "local":
        return _run(channels, hp, model_dir, output_dir, fit_retrieval, production_dir, impressions)
    from training.spark_fit import fit_retrieval_spark, spark_session

    spark = spark_session()
    try:
        fit_on_spark = partial(fit_retrieval_spark, spark)
        return _run(channels, hp, model_dir, output_dir, fit_on_spark, production_dir, impressions)
    finally:
        spark.stop()


def _run(
    channels: Channels,
    hp: Hyperparameters,
    model_dir: Path,
    output_dir: Path,
    fit_retrieval: FitRetrieval,
    production_dir: Path | None,
    impressions: pd.DataFrame | None = None,
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    interactions = channels.interactions
    catalog = build_catalog(channels.items)
    split = temporal_split(interactions, hp.test_fraction)
    validation_start = epoch_seconds(split.validation_start)
    test_start = epoch_seconds(split.test_start)
    logger.info("split: %s", split.summary())
    segments = user_segments(channels.users)
    given = hp
    choices, tuned = ServingChoices(), None
    before_test = interactions[interactions["timestamp"] < split.test_start]
    settings = anchor_settings(
        len(before_test), hp.anchor_trials, hp.anchor_seconds, hp.ease_max_items, hp.max_eval_users, hp.seed,
        hp.threads,
    )  # fmt: skip
    with step(ANCHOR_SEARCH_STEP, timings):
        # before the tuning: its fallback may serve a personal anchor with the settings chosen here
        anchors = tuned_anchors(before_test, catalog, validation_start, test_start, settings)
    budget = budget_of(hp, len(split.train))
    if budget is not None:
        with step("0. validation tuning", timings):
            # the ranker's labels: the last part of the training window, as long as the validation window
            ranker_start = validation_start - (test_start - validation_start)
            tuned = tune(
                split.train,
                split.validation,
                catalog,
                validation_start,
                ranker_start,
                hp,
                channels.users,
                segments,
                budget,
                personal_anchors=personal_settings(anchors),
            )
        if tuned is not None:
            hp, choices = tuned.hp, tuned.choices
    if tuned is None:
        choices = replace(choices, long_tail=long_tail_off("no validation tuning: no window to choose it on"))

    with step("1. retrieval on train", timings):
        if tuned is not None and tuned.retrieval is not None:
            retrieval_train, histories_train = tuned.retrieval  # the search's best fit: these very values
        else:
            retrieval_train, histories_train = fit_retrieval(
                split.train, catalog, validation_start, hp, channels.users
            )
        choices.apply(retrieval_train)
        with_personal_anchor(retrieval_train, split.train, catalog, validation_start, choices.fallback)
    labelled = (
        None
        if impressions is None or impressions.empty
        else labelled_impressions(impressions, interactions, split.test_start, hp)
    )
    with step("position propensities from the pages since the validation window", timings):
        # each shown item's features from the histories before the validation window: no page's own
        # clicks are in them (the regression EM's attractiveness model must not see the clicks it explains)
        pages, page_features, _ = window_pages(
            labelled,
            split.validation_start,
            None,
            with_ranker(retrieval_train, None),
            histories_train,
            validation_start,
            segments,
        )
        estimate = flat_estimate() if labelled is None else estimate_propensities(pages, page_features)
    with step("1. ranker on the validation window (its candidates and its logged pages)", timings):
        in_validation = (pages["timestamp"] < split.test_start).to_numpy(bool)
        rows, features = pages[in_validation], page_features[in_validation]
        validation_comparison = compare_debiasing(rows, features, estimate, hp)
        debiasing = str(validation_comparison["kept"])
        ranker_eval, ranker_eval_info = train_ranker(
            retrieval_train,
            histories_train,
            split.validation,
            validation_start,
            hp,
            segments,
            click_lists(rows, features),
            estimate,
            debiasing,
        )
    # what the training window's fit served is done with: freed before the next fit (at 10M events the
    # fits, each holding its shoppers' histories, had raised the job's peak from 6.2 to 9.4 GiB)
    del retrieval_train, histories_train, pages, page_features, rows, features
    with step("2. retrieval on train + validation", timings):
        retrieval_before_test, histories_before_test = fit_retrieval(
            before_test, catalog, test_start, hp, channels.users
        )
        choices.apply(retrieval_before_test)
        with_personal_anchor(retrieval_before_test, before_test, catalog, test_start, choices.fallback)
    with step("2. evaluation on the test window", timings):
        pipeline = with_ranker(retrieval_before_test, ranker_eval)
        served_lists: dict[str, dict[str, list[int]]] = {}  # model -> user -> rows, for the paired ratios
        models = evaluate(
            pipeline, histories_before_test, split.test, test_start, hp, segments, lists_out=served_lists
        )
    with step("2. counterfactual CTR on the test window's logged pages", timings):
        test_rows, test_features, candidate_scores = window_pages(
            labelled, split.test_start, None, pipeline, histories_before_test, test_start, segments
        )
        evidence = (
            no_position_evidence()
            if labelled is None
            else position_evidence(
                estimate,
                test_rows,
                candidate_scores,
                {
                    "validation": validation_comparison,
                    "test": compare_debiasing(test_rows, test_features, estimate, hp),
                    "used": debiasing,
                },
                hp,
            )
        )
    with step(ANCHOR_TEST_STEP, timings):
        models.update(
            evaluate_anchors(anchors, pipeline, histories_before_test, split.test, hp, served_lists)
        )
        _, relevant = evaluation_targets(split.test, pipeline, histories_before_test, hp)
        against = against_anchors(served_lists, relevant, hp.seed)
        del served_lists
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
            retrieval_before_test,
            histories_before_test,
            split.test,
            test_start,
            hp,
            segments,
            click_lists(test_rows, test_features),
            estimate,
            debiasing,
        )
    del retrieval_before_test, histories_before_test, pipeline, test_rows, test_features, candidate_scores
    end = epoch_seconds(interactions["timestamp"].max())
    with step("3. retrieval on all data", timings):
        retrieval_all, histories_all = fit_retrieval(interactions, catalog, end, hp, channels.users)
        choices.apply(retrieval_all)
        # the served personal anchor's weights on all data, as the rest of the model (end: the last
        # event's time, which window_of excludes: one second later keeps it)
        with_personal_anchor(retrieval_all, interactions, catalog, end + 1.0, choices.fallback)

    created_at = datetime.now(UTC)
    data_sha256 = data_fingerprint(
        [path for paths in channels.report.get("files", {}).values() for path in paths]
    )
    version = model_version(created_at, data_sha256, given.as_dict())
    tuning = tuning_section(tuned, given, len(split.train))
    fallback = {**choices.fallback, "test": fallback_on_test(models)}
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
        "tuning": tuning,
        "fallback_to_anchor": fallback,
        "long_tail_correction": choices.long_tail,
        "anchors": anchor_summaries,
        "pipeline_vs_anchors": against,
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
        **evidence,
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
        "given_hyperparameters": given.as_dict(),
        "als": {"factors": hp.factors, "regularization": hp.regularization, "alpha": hp.alpha},
        "event_weights": hp.event_weights(),
        # the time every history was decayed to (the last event's): serving scales each profile's history,
        # stored decayed to its shopper's latest event, to it (``store.history_at_model``)
        HISTORIES_AT: end,
        **choices.manifest(),
        FALLBACK: fallback,
        "tuning": {key: value for key, value in tuning.items() if key != "trials"},
        "features": list(FEATURE_NAMES),
        "data": data,
        "metrics": models,
        "ranker": ranker_info,
        "timings": timings,
        # the quality gate reads the manifest: the counterfactual estimate travels with the model
        "counterfactual": evidence["counterfactual"],
        "position_propensities": evidence["position_propensities"],
    }
    if gate is not None:
        evaluation["gate"] = manifest["gate"] = gate
    with step("writing the model dir", timings):
        published = with_ranker(retrieval_all, ranker)
        serves_personal = bool(fallback.get("engaged")) and fallback.get("anchor") in NEIGHBOUR_FAMILIES
        records = user_feature_records(
            histories_all,
            channels.users,
            catalog.item_ids,
            serves_personal,
            histories_at=end,
            half_life_days=hp.half_life_days,
        )
        write_model_dir(model_dir, published, manifest, records)
    evaluation["timings"] = timings
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION).write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    write_report(evaluation, output_dir)
    logger.info("model %s written to %s, evaluation to %s", version, model_dir, output_dir / EVALUATION)
    return evaluation


def tuning_section(tuned: Tuned | None, given: Hyperparameters, n_events: int) -> dict[str, Any]:
    """``evaluation.json``'s ``tuning``: the search's record, or why there was none."""
    if tuned is not None:
        return tuned.summary
    if budget_of(given, n_events) is None:
        reason = f"tuning_trials={given.tuning_trials}, tuning_seconds={given.tuning_seconds}"
    else:
        reason = "the training window holds no shoppers to learn a ranker from before the validation window"
    return {"enabled": False, "reason": reason, "training_events": n_events}


def personal_settings(anchors: dict[str, AnchorResult]) -> dict[str, dict[str, Any]]:
    """The tuned settings of the item-item anchors searched on the validation window (the personal
    anchors the fallback may serve); none for an anchor skipped or not searched."""
    return {
        name: dict(anchors[name].params)
        for name in NEIGHBOUR_FAMILIES
        if name in anchors and anchors[name].skipped is None and anchors[name].validation_ndcg is not None
    }


def fallback_on_test(models: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The served page against the tuned anchors on the test window (NDCG@10), for the report and gate."""
    return {
        name: round(float(models[name]["ndcg@10"]), 6)
        for name in ("pipeline", *ANCHOR_NAMES)
        if name in models
    }
