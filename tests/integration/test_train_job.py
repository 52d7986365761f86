"""The training job as SageMaker runs it: a subprocess with SM_* variables on a small synthetic shop."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from merchandiser.retrieval import similar
from merchandiser.serving import Model
from merchandiser.store import (
    CATALOG,
    INDEX,
    ITEM_FACTORS,
    POPULARITY,
    RANKER,
    SIGNALS,
    USER_FEATURES,
    read_manifest,
)
from training.datasets.synthetic_shop import generate

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("popularity", "als", "pipeline")
METRICS = ("ndcg@10", "recall@20", "hit@10", "coverage@20")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("shop")
    generate(data, n_users=600, n_items=300, seed=7)
    return data


def train(shop: Path, out: Path, engine: str = "local") -> dict[str, Any]:
    """Runs training/train.py as a script, the way the SageMaker container does."""
    hyperparameters = out / "hyperparameters.json"
    # SageMaker passes every hyperparameter as a string; a trial budget that binds (not the time) keeps the
    # tuning, hence the two runs, deterministic
    hyperparameters.write_text(
        json.dumps({"iterations": "15", "seed": "7", "tuning-trials": "6", "tuning-seconds": "100000"})
    )
    env = {
        **os.environ,
        "SM_CHANNEL_INTERACTIONS": str(shop),
        "SM_CHANNEL_ITEMS": str(shop),
        "SM_CHANNEL_USERS": str(shop),
        "SM_MODEL_DIR": str(out / "model"),
        "SM_OUTPUT_DATA_DIR": str(out / "output"),
    }
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "training" / "train.py"),
            "--factors",
            "32",
            "--hyperparameters-json",
            str(hyperparameters),
            "--engine",
            engine,
        ],
        env=env,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((out / "output" / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def runs(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, Any]]]:
    results = []
    for attempt in range(2):
        out = tmp_path_factory.mktemp(f"run{attempt}")
        results.append((out, train(shop, out)))
    return results


@pytest.fixture(scope="module")
def spark_run(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("spark")
    return out, train(shop, out, engine="spark")


@pytest.fixture(params=["local", "spark"])
def finished(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """The same contract for both engines: a finished job's output dir and evaluation."""
    if request.param == "spark":
        return request.getfixturevalue("spark_run")  # type: ignore[no-any-return]
    return request.getfixturevalue("runs")[0]  # type: ignore[no-any-return]


def test_model_dir_holds_every_artifact_with_its_hash(finished: tuple[Path, dict[str, Any]]) -> None:
    # Given a finished job / When its manifest is verified / Then every artifact is listed and matches
    out, evaluation = finished
    manifest = read_manifest(out / "model", verify=True)
    expected = {
        CATALOG,
        ITEM_FACTORS,
        POPULARITY,
        INDEX,
        RANKER,
        SIGNALS,
        USER_FEATURES,
    }
    assert set(manifest["files"]) == expected
    assert manifest["model_version"] == evaluation["model_version"]
    assert manifest["given_hyperparameters"]["factors"] == 32
    assert manifest["hyperparameters"]["iterations"] == 15
    assert manifest["tuning"]["budget"]["trials"] == 6 and evaluation["tuning"]["enabled"] is True
    assert manifest["metrics"]["pipeline"]["ndcg@10"] == evaluation["models"]["pipeline"]["ndcg@10"]
    # the long-tail strength the tuning chose travels to serving and is reported
    assert manifest["long_tail_correction"] == evaluation["long_tail_correction"]
    assert (
        "strength" in manifest["long_tail_correction"]
        and "0.0" in manifest["long_tail_correction"]["validation"]
    )
    assert {"numpy", "lightgbm", "chroma-hnswlib"} <= set(manifest["libraries"])
    assert manifest["data"]["first_timestamp"] and manifest["data"]["last_timestamp"]


def test_user_features_cover_every_user(finished: tuple[Path, dict[str, Any]]) -> None:
    out, evaluation = finished
    with gzip.open(out / "model" / USER_FEATURES, "rt") as lines:
        records = [json.loads(line) for line in lines]
    assert len(records) == evaluation["data"]["users"]
    first = records[0]
    # the history decayed to the shopper's latest event (history_at) with the training's half-life
    fields = {"user_id", "history", "history_at", "half_life_days", "purchased", "recent", "category_seen"}
    fields |= {"attributes"}
    # the raw weights a served personal anchor reads, for the history's items, only when one is served
    fallback = evaluation["fallback_to_anchor"]
    if fallback.get("engaged") and fallback.get("kind") == "personal":
        assert set(first) == {*fields, "raw_history"} and set(first["raw_history"]) == set(first["history"])
    else:
        assert set(first) == fields
    assert first["recent"] and set(first["recent"]) <= set(first["history"]) | set(first["purchased"])
    assert 0 < len(first["history"]) <= 200 and first["attributes"]
    manifest = read_manifest(out / "model")
    assert first["half_life_days"] == manifest["hyperparameters"]["half_life_days"]
    latest = max(record["history_at"] for record in records)  # the last event's shopper's, to 1 ms
    assert first["history_at"] <= latest == pytest.approx(manifest["histories_at"], abs=1e-3)


def test_evaluation_reports_every_model_and_the_split(finished: tuple[Path, dict[str, Any]]) -> None:
    _, evaluation = finished
    assert {"models", "data", "split"} <= set(evaluation)
    for name in MODELS:
        assert set(METRICS) <= set(evaluation["models"][name])
        assert evaluation["models"][name]["users"] > 50
    assert evaluation["split"]["test_rows"] > 0


def test_pipeline_beats_popularity(finished: tuple[Path, dict[str, Any]]) -> None:
    models = finished[1]["models"]
    assert models["pipeline"]["ndcg@10"] > models["popularity"]["ndcg@10"]


def test_the_spark_model_serves_and_scores_within_5_percent_of_the_local_one(
    runs: list[tuple[Path, dict[str, Any]]], spark_run: tuple[Path, dict[str, Any]]
) -> None:
    # Given the same data and flags on both engines
    local, spark = runs[0][1]["models"]["pipeline"], spark_run[1]["models"]["pipeline"]
    # Then the served pages score alike, and serving loads the Spark job's artifacts unchanged
    assert spark["ndcg@10"] == pytest.approx(local["ndcg@10"], rel=0.05)
    model = Model.load(spark_run[0] / "model")
    assert len(similar(model.items, str(model.items.catalog.item_ids[0]), 5)) == 5


def test_two_runs_give_the_same_metrics_and_artifacts(runs: list[tuple[Path, dict[str, Any]]]) -> None:
    (first_dir, first), (second_dir, second) = runs
    assert first["models"] == second["models"]
    first_files = read_manifest(first_dir / "model")["files"]
    second_files = read_manifest(second_dir / "model")["files"]
    # hnswlib writes unused link-list slots uninitialized, so index.bin bytes differ run to run;
    # its graph does not: the same queries give the same answers
    assert {name: digest for name, digest in first_files.items() if name != INDEX} == {
        name: digest for name, digest in second_files.items() if name != INDEX
    }
    first_model, second_model = Model.load(first_dir / "model"), Model.load(second_dir / "model")
    for item_id in first_model.items.catalog.item_ids[:50].tolist():
        assert (
            similar(first_model.items, item_id, 10).rows.tolist()
            == similar(second_model.items, item_id, 10).rows.tolist()
        )


def test_the_page_against_each_tuned_anchor_has_its_paired_interval(
    finished: tuple[Path, dict[str, Any]],
) -> None:
    output, evaluation = finished
    models, paired = evaluation["models"], evaluation["pipeline_vs_anchors"]
    # Every scored anchor has the page's NDCG@10 ratio over it on the same shoppers, inside its interval
    assert set(paired) == {name for name in evaluation["anchors"] if name in models} and paired
    for name, entry in paired.items():
        assert entry["ratio"] == pytest.approx(models["pipeline"]["ndcg@10"] / models[name]["ndcg@10"])
        low, high = entry["ci95"]
        assert low <= entry["ratio"] <= high and entry["users"] == models["pipeline"]["users"]
    # And the report states the best anchor's interval
    assert "paired bootstrap over" in (output / "output" / "report.md").read_text()
