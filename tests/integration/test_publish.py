"""Publish on moto: a promoted model's files in S3, the live-model parameter, a canary per serving function.

Given three serving functions created like the stacks create them (deps and core layers, a published
version, a `live` alias, a CodeDeploy deployment group each), publishing a model sets the parameter,
publishes a new version of each function (which loads what the parameter names) and starts a CodeDeploy
deployment moving the alias to it; rollback and a failed canary put everything back.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from merchandiser.publishing import (
    MODEL_RELEASE_VARIABLE,
    LiveModel,
    ModelCanary,
    NothingToRollBackError,
    SwapError,
    canary_failed,
    publish,
    rollback,
)
from merchandiser.store import PRODUCTION_POINTER, FeatureStore

BUCKET = "artifacts"
PARAMETER = "/Merchandiser-Serving/live-model-version"
APPLICATION = "canary"
FUNCTIONS = ("retrieval", "ranking", "reranking")


def a_zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "x")
    return buffer.getvalue()


@pytest.fixture
def lambda_client(aws) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Functions as the serving stack deploys them, with their deployment groups; the `aws` mock is active."""
    client = boto3.client("lambda")
    role = boto3.client("iam").create_role(
        RoleName="serving", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    layers = [
        client.publish_layer_version(LayerName=name, Content={"ZipFile": a_zip(f"{name}.txt")})[
            "LayerVersionArn"
        ]
        for name in ("Merchandiser-Serving-deps", "Merchandiser-Serving-core")
    ]
    codedeploy = boto3.client("codedeploy")
    codedeploy.create_application(applicationName=APPLICATION, computePlatform="Lambda")
    for name in FUNCTIONS:
        client.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                               Code={"ZipFile": a_zip("handler.py")}, Layers=layers,
                               Environment={"Variables": {"MODEL_PARAMETER": PARAMETER}})  # fmt: skip
        version = client.publish_version(FunctionName=name)["Version"]
        client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        codedeploy.create_deployment_group(
            applicationName=APPLICATION, deploymentGroupName=f"{name}-group", serviceRoleArn=role,
            deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes",
        )  # fmt: skip
    yield client


STOPPED: list[dict[str, Any]] = []  # StopDeployment calls: moto records deployments but cannot stop one


def record_stop(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    STOPPED.append(json.loads(params["body"]))  # the request CodeDeploy would get
    return AWSResponse("https://codedeploy", 200, {}, None), {"status": "Pending"}


def canary_of(lambda_client: Any, functions: tuple[str, ...] = FUNCTIONS) -> ModelCanary:
    targets = tuple((name, f"{name}-group") for name in functions)
    codedeploy = boto3.client("codedeploy")
    codedeploy.meta.events.register("before-call.codedeploy.StopDeployment", record_stop)
    STOPPED.clear()
    return ModelCanary(lambda_client, codedeploy, APPLICATION, targets)


def live_model() -> LiveModel:
    return LiveModel(boto3.client("ssm"), PARAMETER)


def parameter() -> str:
    return str(boto3.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"])


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


def scored_m2(model_dir: Path, tmp_path: Path) -> Path:
    """m2, scored by its job against m1 on one window (the gate promotes it when not worse)."""
    return versioned(model_dir, tmp_path, "m2", against="m1")


def live(client: Any, name: str) -> str:
    return str(client.get_alias(FunctionName=name, Name="live")["FunctionVersion"])


def completed(lambda_client: Any, result: dict[str, Any]) -> dict[str, Any]:
    """What CodeDeploy does when a canary passes (moto records deployments without running them)."""
    for switch in result["swap"]["functions"]:
        lambda_client.update_alias(
            FunctionName=switch["function_name"], Name="live", FunctionVersion=switch["version"]
        )
    return result


def deployment(deployment_id: str) -> dict[str, Any]:
    info = boto3.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return dict(info)


def pointer() -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=PRODUCTION_POINTER)["Body"].read()
    return json.loads(body)


def publish_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "ARTIFACTS_BUCKET": BUCKET,
        "USERS_TABLE": "users",
        "ITEMS_TABLE": "items",
        "MODEL_PARAMETER": PARAMETER,
    }.items():
        monkeypatch.setenv(key, value)


def test_a_promotion_sets_the_parameter_and_starts_a_canary_per_serving_function(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    # When m1 is published
    result = publish(
        s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary_of(lambda_client), live_model()
    )
    # Then its files are where serving fetches them and the parameter names it
    assert result["promote"] is True and parameter() == "m1"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="models/m1/")["Contents"]}
    assert {"models/m1/manifest.json", "models/m1/index.bin", "models/m1/item_factors.npy"} <= keys
    switches = result["swap"]["functions"]
    assert [s["function_name"] for s in switches] == list(FUNCTIONS)
    for switch in switches:
        name = switch["function_name"]
        # a new version, published for m1, and a CodeDeploy deployment moving `live` from 1 to it
        assert switch["version"] == "2" and switch["previous_version"] == "1"
        config = lambda_client.get_function_configuration(FunctionName=name, Qualifier="2")
        assert config["Environment"]["Variables"][MODEL_RELEASE_VARIABLE] == "m1"
        assert config["Environment"]["Variables"]["MODEL_PARAMETER"] == PARAMETER  # the rest kept
        info = deployment(switch["deployment_id"])
        assert info["deploymentGroupName"] == f"{name}-group" and info["applicationName"] == APPLICATION
        spec = json.loads(info["revision"]["appSpecContent"]["content"])
        assert spec["Resources"][0][name]["Properties"] == {
            "Name": name, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"
        }  # fmt: skip
    assert pointer()["swap"]["functions"] == switches


def test_rollback_flips_every_alias_back_and_restores_the_parameter_and_pointer(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3, canary = boto3.client("s3"), canary_of(lambda_client)
    completed(
        lambda_client, publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary, live_model())
    )
    with pytest.raises(NothingToRollBackError):  # m1 replaced nothing
        rollback(s3, BUCKET, canary, live_model())
    completed(
        lambda_client,
        publish(s3, store, BUCKET, scored_m2(model_dir, tmp_path), canary, live_model()),
    )
    assert pointer()["model_version"] == "m2" and parameter() == "m2"

    result = rollback(s3, BUCKET, canary, live_model())

    assert result["model_version"] == "m1" and result["functions"] == dict.fromkeys(FUNCTIONS, "2")
    assert {live(lambda_client, name) for name in FUNCTIONS} == {"2"}  # m1's versions
    assert pointer()["model_version"] == "m1" and parameter() == "m1"
    with pytest.raises(NothingToRollBackError):  # one step of history
        rollback(s3, BUCKET, canary, live_model())


def test_a_failed_canary_puts_the_parameter_and_pointer_back_once(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3, canary = boto3.client("s3"), canary_of(lambda_client)
    publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary, live_model())
    second = publish(s3, store, BUCKET, scored_m2(model_dir, tmp_path), canary, live_model())
    failed = second["swap"]["functions"][1]["deployment_id"]
    # When CodeDeploy reports a deployment that is not the last promotion's: nothing moves
    assert canary_failed(s3, BUCKET, "d-OTHER", live_model())["rolled_back"] is False
    assert parameter() == "m2"
    # When it reports one of m2's canaries stopped on an alarm
    result = canary_failed(s3, BUCKET, failed, live_model())
    # Then m1 is live again for new versions and for the gate; the other canaries' reports change nothing
    assert result == {"rolled_back": "m2", "model_version": "m1"}
    assert parameter() == "m1" and pointer()["model_version"] == "m1"
    other = second["swap"]["functions"][0]["deployment_id"]
    assert canary_failed(s3, BUCKET, other, live_model())["rolled_back"] is False
    assert parameter() == "m1"


def test_a_function_without_a_canary_undoes_the_others_and_keeps_the_parameter_and_pointer(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    first = publish(
        s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary_of(lambda_client), live_model()
    )
    completed(lambda_client, first)
    canary = canary_of(lambda_client, (*FUNCTIONS, "missing-function"))
    with pytest.raises(SwapError, match="missing-function"):
        publish(s3, store, BUCKET, scored_m2(model_dir, tmp_path), canary, live_model())
    # the three canaries started for m2 are stopped (with CodeDeploy's rollback), every alias on m1's version
    assert len(STOPPED) == len(FUNCTIONS) and all(stop["autoRollbackEnabled"] for stop in STOPPED)
    assert {live(lambda_client, name) for name in FUNCTIONS} == {"2"}
    assert parameter() == "m1" and pointer()["model_version"] == "m1"


def test_a_refused_model_moves_nothing(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3, canary = boto3.client("s3"), canary_of(lambda_client)
    publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary, live_model())
    worse = scored_m2(model_dir, tmp_path)
    manifest = json.loads((worse / "manifest.json").read_text())
    manifest["metrics"] = {}  # no ndcg@10: the gate refuses it
    (worse / "manifest.json").write_text(json.dumps(manifest))
    assert publish(s3, store, BUCKET, worse, canary, live_model())["promote"] is False
    assert {live(lambda_client, name) for name in FUNCTIONS} == {"1"}  # m1's canary never completed here
    assert parameter() == "m1" and pointer()["model_version"] == "m1"


def test_the_publish_handler_undoes_the_promotion_whose_canary_codedeploy_stopped(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.publish import handler
    from local_twin.functions import LambdaContext

    s3, canary = boto3.client("s3"), canary_of(lambda_client)
    completed(
        lambda_client, publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary, live_model())
    )
    second = publish(s3, store, BUCKET, scored_m2(model_dir, tmp_path), canary, live_model())
    publish_environment(monkeypatch)
    # When EventBridge delivers CodeDeploy's state change of one of m2's canaries (stopped on an alarm)
    event = {
        "source": "aws.codedeploy",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "detail": {"state": "FAILURE", "application": APPLICATION,
                   "deploymentId": second["swap"]["functions"][0]["deployment_id"]},
    }  # fmt: skip
    result = handler.handler(event, LambdaContext("publish"))
    # Then m1 is the live model again
    assert result == {"rolled_back": "m2", "model_version": "m1"}
    assert parameter() == "m1" and pointer()["model_version"] == "m1"


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


def test_the_publish_handler_publishes_the_model_a_spark_job_run_left_for_the_state_machine(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.publish import handler
    from local_twin.functions import LambdaContext
    from merchandiser.publishing import model_artifact
    from training.s3_channels import upload_dir

    # Given the Spark job's model.tar.gz where SageMaker would have left it
    publish_environment(monkeypatch)
    artifact = upload_dir(
        boto3.client("s3"), versioned(model_dir, tmp_path, "spark-1"), model_artifact(BUCKET, "job-1")
    )
    assert artifact == f"s3://{BUCKET}/training-output/job-1/output/model.tar.gz"
    # When the state machine's last step hands it to publish
    result = handler.handler({"model_artifact": artifact}, LambdaContext("publish"))
    # Then it is the production model, as after a SageMaker job
    assert result["promote"] is True and result["model_version"] == "spark-1"
    assert parameter() == "spark-1" and pointer()["model_version"] == "spark-1"


@pytest.mark.parametrize("artifact", ["training-output/job-1/model.tar.gz", "s3://artifacts/job-1/model.zip"])
def test_the_publish_handler_refuses_a_model_artifact_that_is_not_an_s3_tarball(
    aws: Any, artifact: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.publish import handler
    from local_twin.functions import LambdaContext

    publish_environment(monkeypatch)
    with pytest.raises(ValueError, match=re.escape("s3://bucket/...tar.gz")):
        handler.handler({"model_artifact": artifact}, LambdaContext("publish"))


def test_each_canary_start_deletes_the_versions_neither_live_nor_new(
    lambda_client: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    """On moto's Lambda (one promotion after the other: moto renumbers versions after a delete, see
    tests/unit/test_canary_pruning.py for three in a row)."""
    s3, canary = boto3.client("s3"), canary_of(lambda_client)
    completed(
        lambda_client, publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), canary, live_model())
    )
    # When m2 is published: `live` on 2 (m1's), the canary's version 3
    publish(s3, store, BUCKET, scored_m2(model_dir, tmp_path), canary, live_model())
    # Then version 1 (the deploy's, replaced by m1's) is gone from every serving function
    for name in FUNCTIONS:
        listed = lambda_client.list_versions_by_function(FunctionName=name)["Versions"]
        assert [v["Version"] for v in listed] == ["$LATEST", "2", "3"], name
