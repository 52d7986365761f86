"""Blue/green publish on moto: a promoted model becomes a model-layer version behind each `live` alias.

Given three serving functions created like the stacks create them (deps, core and model layers, a
published version, a `live` alias), publishing a model publishes a new model layer version, points
every function at it, publishes a version and moves the alias; rollback moves the aliases back.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from merchandiser.publishing import (
    LAYER_ZIP,
    ModelSwap,
    NothingToRollBackError,
    SwapError,
    layer_name_of,
    publish,
    rollback,
    with_layer,
)
from merchandiser.store import PRODUCTION_POINTER, FeatureStore

BUCKET = "artifacts"
MODEL_LAYER = "Merchandiser-Serving-model"
FUNCTIONS = ("retrieval", "ranking", "reranking")


def a_zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "x")
    return buffer.getvalue()


@pytest.fixture
def lambda_client(aws) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Functions as the serving stack deploys them; the `aws` fixture's mock is active."""
    client = boto3.client("lambda")
    role = boto3.client("iam").create_role(
        RoleName="serving", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    layers = [
        client.publish_layer_version(LayerName=name, Content={"ZipFile": a_zip(f"{name}.txt")})[
            "LayerVersionArn"
        ]
        for name in ("Merchandiser-Serving-deps", "Merchandiser-Serving-core", MODEL_LAYER)
    ]
    for name in FUNCTIONS:
        client.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                               Code={"ZipFile": a_zip("handler.py")}, Layers=layers)  # fmt: skip
        version = client.publish_version(FunctionName=name)["Version"]
        client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield client


@pytest.fixture
def store(aws) -> FeatureStore:  # type: ignore[no-untyped-def]
    return FeatureStore(aws.dynamodb, "users", "sessions")


def versioned(
    model_dir: Path,
    tmp_path: Path,
    version: str,
    against: str | None = None,
    scores: tuple[float, float] = (0.3, 0.3),
) -> Path:
    """A copy of the tiny model under another model_version (the manifest itself is not hashed); with
    ``against``, the job scored it (``scores[0]``) and that production model (``scores[1]``) on one window."""
    copy = tmp_path / version
    shutil.copytree(model_dir, copy)
    manifest = {**json.loads((copy / "manifest.json").read_text()), "model_version": version}
    if against is not None:
        manifest["gate"] = {
            "scored": True,
            "model_version": against,
            "candidate": scores[0],
            "production": scores[1],
            "users": 500,
            "window_start": "s",
            "window_end": "e",
        }
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def live(client: Any, name: str) -> tuple[str, list[str]]:
    """(version behind `live`, the layers of that version)."""
    version = client.get_alias(FunctionName=name, Name="live")["FunctionVersion"]
    config = client.get_function_configuration(FunctionName=name, Qualifier=version)
    return version, [layer["Arn"] for layer in config.get("Layers", [])]


def pointer() -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=PRODUCTION_POINTER)["Body"].read()
    return json.loads(body)


def test_a_promotion_moves_every_alias_to_a_version_with_the_new_model_layer(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    swap = ModelSwap(lambda_client, MODEL_LAYER, FUNCTIONS)
    result = publish(boto3.client("s3"), store, BUCKET, versioned(model_dir, tmp_path, "m1"), swap)
    assert result["promote"] is True
    layer_arn = result["swap"]["layer_version_arn"]
    assert layer_name_of(layer_arn) == MODEL_LAYER and layer_arn.endswith(":2")
    for name in FUNCTIONS:
        version, layers = live(lambda_client, name)
        assert version == "2"
        assert [layer_name_of(arn) for arn in layers][:2] == [
            "Merchandiser-Serving-deps",
            "Merchandiser-Serving-core",
        ]
        assert layers[2] == layer_arn
        # the old version is immutable: it still has the old model layer, ready for a rollback
        old = lambda_client.get_function_configuration(FunctionName=name, Qualifier="1")["Layers"]
        assert old[2]["Arn"].endswith(f"{MODEL_LAYER}:1")
    assert pointer()["swap"]["functions"][0] == {
        "function_name": "retrieval",
        "version": "2",
        "previous_version": "1",
    }
    archive = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"models/m1/{LAYER_ZIP}")["Body"].read()
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert "model/manifest.json" in names and "model/index.bin" in names
    assert not any("user_features" in name for name in names)  # shopper data never goes to a layer


def test_rollback_flips_every_alias_back_and_restores_the_previous_pointer(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3, swap = boto3.client("s3"), ModelSwap(lambda_client, MODEL_LAYER, FUNCTIONS)
    publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), swap)
    with pytest.raises(NothingToRollBackError):  # m1 replaced nothing
        rollback(s3, BUCKET, swap)
    publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m2", against="m1"), swap)
    assert {live(lambda_client, name)[0] for name in FUNCTIONS} == {"3"}
    assert pointer()["model_version"] == "m2"

    result = rollback(s3, BUCKET, swap)

    assert result["model_version"] == "m1" and result["functions"] == dict.fromkeys(FUNCTIONS, "2")
    assert {live(lambda_client, name)[0] for name in FUNCTIONS} == {"2"}
    assert live(lambda_client, "retrieval")[1][2].endswith(f"{MODEL_LAYER}:2")  # m1's layer version
    assert pointer()["model_version"] == "m1"
    with pytest.raises(NothingToRollBackError):  # one step of history
        rollback(s3, BUCKET, swap)


def test_a_function_that_cannot_be_switched_undoes_the_others_and_keeps_the_pointer(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    swap = ModelSwap(lambda_client, MODEL_LAYER, (*FUNCTIONS, "missing-function"))
    with pytest.raises(SwapError, match="missing-function"):
        publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), swap)
    assert {live(lambda_client, name)[0] for name in FUNCTIONS} == {"1"}  # every alias flipped back
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key=PRODUCTION_POINTER)


def test_a_refused_model_swaps_nothing(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3, swap = boto3.client("s3"), ModelSwap(lambda_client, MODEL_LAYER, FUNCTIONS)
    publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), swap)
    worse = versioned(model_dir, tmp_path, "m2")
    manifest = json.loads((worse / "manifest.json").read_text())
    manifest["metrics"] = {}  # no ndcg@10: the gate refuses it
    (worse / "manifest.json").write_text(json.dumps(manifest))
    assert publish(s3, store, BUCKET, worse, swap)["promote"] is False
    assert {live(lambda_client, name)[0] for name in FUNCTIONS} == {"2"}
    assert pointer()["model_version"] == "m1"


def test_five_successively_slightly_worse_models_stop_passing(
    store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    """The ratchet: each candidate is 0.008 NDCG@10 worse than production on their shared window, well
    inside the 0.02 tolerance, so comparing each with the last would promote all five."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    assert publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m0"))["promote"] is True
    production, score, decisions = "m0", 0.300, []
    for n in range(1, 6):
        # Given candidate m<n>, scored with the current production on the same window
        candidate = versioned(model_dir, tmp_path, f"m{n}", against=production, scores=(score - 0.008, score))
        # When it is published
        decision = publish(s3, store, BUCKET, candidate)
        decisions.append(decision["promote"])
        if decision["promote"]:
            production, score = f"m{n}", score - 0.008
    # Then the first two pass, and once the losses add up to the tolerance the later ones fail
    assert decisions == [True, True, False, False, False]
    assert pointer()["model_version"] == "m2" and pointer()["gate"]["drift"] == pytest.approx(0.016)
    refused = json.loads(s3.get_object(Bucket=BUCKET, Key="models/m3/decision.json")["Body"].read())
    assert refused["evidence"] == "same window" and "exceeds" in refused["reasons"][-1]


def test_with_layer_replaces_only_the_same_layer_in_place() -> None:
    deps, model1, model2 = (f"arn:aws:lambda:us-east-1:123456789012:layer:{n}" for n in ("d:3", "m:1", "m:2"))
    assert with_layer([deps, model1], model2) == [deps, model2]
    assert with_layer([deps], model2) == [deps, model2]
    with pytest.raises(ValueError, match="not a layer version ARN"):
        layer_name_of("arn:aws:lambda:us-east-1:123456789012:function:retrieval")
