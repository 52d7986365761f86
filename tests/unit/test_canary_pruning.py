"""Each canary start prunes the function's old versions (SnapStart bills a snapshot cache per version).

On botocore's Stubber, not moto: moto (5.2) numbers a new version len(versions) + 1, so after a delete it
publishes a number that already exists, and it deletes a version an alias points to without the
ResourceConflictException Lambda answers. The stubs hold Lambda's answers for the function's state before
each promotion; each test checks which versions the canary asks Lambda to delete, and that nothing else is
called (``assert_no_pending_responses``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from merchandiser.publishing import ModelCanary

FUNCTION = "retrieval"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"


@pytest.fixture
def stubbed() -> Iterator[tuple[ModelCanary, Stubber, Stubber]]:
    lambda_client = boto3.client("lambda", region_name="us-east-1")
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    with Stubber(lambda_client) as lambdas, Stubber(codedeploy) as deployments:
        yield ModelCanary(lambda_client, codedeploy, "canary", ((FUNCTION, "group"),)), lambdas, deployments
        lambdas.assert_no_pending_responses()
        deployments.assert_no_pending_responses()


def alias(version: str, weights: dict[str, float] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"Name": "live", "AliasArn": f"{ARN}:live", "FunctionVersion": version}
    if weights is not None:
        found["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    return found


def started(
    lambdas: Stubber,
    deployments: Stubber,
    live: dict[str, Any],
    new: str,
    versions: list[str],
    deleted: dict[str, str | None],
) -> None:
    """Lambda's and CodeDeploy's answers to one canary start: ``live`` is the alias before it, ``versions``
    what Lambda lists after ``new`` is published (two pages), ``deleted`` each version the canary must ask
    to delete, with the error Lambda answers (None: deleted)."""
    name = {"FunctionName": FUNCTION}
    lambdas.add_response("get_alias", live, {**name, "Name": "live"})
    lambdas.add_response("get_function_configuration", {"Environment": {"Variables": {"A": "1"}}}, name)
    lambdas.add_response("update_function_configuration", {}, None)
    lambdas.add_response("get_function", {"Configuration": {"LastUpdateStatus": "Successful"}}, name)
    lambdas.add_response("publish_version", {"Version": new}, None)
    deployments.add_response("create_deployment", {"deploymentId": f"d-{new}"}, None)
    lambdas.add_response("list_aliases", {"Aliases": [live]}, name)
    listed = [{"FunctionName": FUNCTION, "Version": version} for version in ["$LATEST", *versions]]
    half = len(listed) // 2
    lambdas.add_response("list_versions_by_function", {"Versions": listed[:half], "NextMarker": "m"}, name)
    lambdas.add_response("list_versions_by_function", {"Versions": listed[half:]}, {**name, "Marker": "m"})
    for version, error in deleted.items():
        params = {**name, "Qualifier": version}
        if error is None:
            lambdas.add_response("delete_function", {}, params)
        else:
            lambdas.add_client_error("delete_function", error, http_status_code=409, expected_params=params)


def test_after_three_promotions_only_the_rollback_target_and_the_newest_version_remain(
    stubbed: tuple[ModelCanary, Stubber, Stubber],
) -> None:
    canary, lambdas, deployments = stubbed
    # Given versions 1-3 left by earlier promotions (before pruning existed), `live` on 3
    started(lambdas, deployments, alias("3"), "4", ["1", "2", "3", "4"], {"1": None, "2": None})
    # (the canary moved `live` to each new version before the next promotion)
    started(lambdas, deployments, alias("4"), "5", ["3", "4", "5"], {"3": None})
    started(lambdas, deployments, alias("5"), "6", ["4", "5", "6"], {"4": None})
    # When three models are promoted
    switches = [canary.apply(f"m{n}")["functions"][0] for n in (1, 2, 3)]
    # Then each moved `live` from the previous version and deleted all but it and the new one: left are
    # $LATEST, 5 (live: the rollback target) and 6 (the canary's)
    assert [(s["previous_version"], s["version"]) for s in switches] == [("3", "4"), ("4", "5"), ("5", "6")]
    assert switches[-1] == {"function_name": FUNCTION, "version": "6", "previous_version": "5",
                            "deployment_id": "d-6"}  # fmt: skip


def test_a_version_an_alias_still_routes_weight_to_is_kept(
    stubbed: tuple[ModelCanary, Stubber, Stubber],
) -> None:
    canary, lambdas, deployments = stubbed
    # Given `live` on 2 still sending 10% to 3 (a canary not finished), and versions 1-3
    live = alias("2", {"3": 0.1})
    # When a model is promoted (version 4): only 1 is deleted, never 3
    started(lambdas, deployments, live, "4", ["1", "2", "3", "4"], {"1": None})
    assert canary.apply("m4")["functions"][0]["version"] == "4"


def test_a_version_lambda_refuses_to_delete_does_not_fail_the_promotion(
    stubbed: tuple[ModelCanary, Stubber, Stubber],
) -> None:
    canary, lambdas, deployments = stubbed
    # Given versions 1 and 2 to prune, Lambda refusing to delete 1 (an alias moved to it meanwhile)
    started(
        lambdas, deployments, alias("3"), "4", ["1", "2", "3", "4"],
        {"1": "ResourceConflictException", "2": None},
    )  # fmt: skip
    # When the model is promoted: the canary started, 2 was still deleted after 1 failed
    result = canary.apply("m4")
    assert result["functions"] == [{"function_name": FUNCTION, "version": "4", "previous_version": "3",
                                    "deployment_id": "d-4"}]  # fmt: skip


def test_a_listing_refused_deletes_nothing_and_does_not_fail_the_promotion(
    stubbed: tuple[ModelCanary, Stubber, Stubber],
) -> None:
    canary, lambdas, deployments = stubbed
    name = {"FunctionName": FUNCTION}
    lambdas.add_response("get_alias", alias("3"), {**name, "Name": "live"})
    lambdas.add_response("get_function_configuration", {}, name)
    lambdas.add_response("update_function_configuration", {}, None)
    lambdas.add_response("get_function", {"Configuration": {"LastUpdateStatus": "Successful"}}, name)
    lambdas.add_response("publish_version", {"Version": "4"}, None)
    deployments.add_response("create_deployment", {"deploymentId": "d-4"}, None)
    # without the aliases' versions nothing is known to be safe to delete: no list of versions, no delete
    lambdas.add_client_error("list_aliases", "AccessDeniedException", http_status_code=403)
    assert canary.apply("m4")["functions"][0]["deployment_id"] == "d-4"
