"""A promoted model goes live through a canary: a new version of each serving function, behind its `live`
alias by a CodeDeploy deployment (10% of the traffic for five minutes, then all of it; rolled back by
CodeDeploy when an alarm of the deployment group fires).

The model is not in the function's package or layers: a version loads whatever the live-model SSM
parameter names when it initialises (before its SnapStart snapshot), so the parameter is set first and
each new version is published after it. Lambda publishes a version only when the configuration changed,
so the version's ``MODEL_RELEASE`` variable is set to the model version first (it also says, on each
version, which model it was published for; serving does not read it). The old versions are immutable
and keep their snapshot of the old model: the 90% they serve during the canary is the old model, and a
rollback (CodeDeploy's, or ``rollback`` here) is one alias update per function.

Across the three functions there is no atomicity: each has its own deployment, all watching the same
alarms, so a bad model fails (and is rolled back from) all three within one alarm period.

Each start also prunes the function's older versions (``prune``): SnapStart bills a snapshot cache per
published version while it is active, so only the new version, the rollback target and whatever an alias
still points or routes weight to are kept (and ``$LATEST``). Pruning is housekeeping: a version it cannot
delete (an alias moved to it meanwhile: ``ResourceConflictException``) is logged and left for the next
promotion, and nothing it does fails the promotion.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

MODEL_RELEASE_VARIABLE = "MODEL_RELEASE"
LATEST = "$LATEST"
WAIT = {"Delay": 1, "MaxAttempts": 120}  # a configuration update usually settles in a few seconds


class SwapError(RuntimeError):
    """A serving function could not be given a canary; the deployments already started were not."""


@dataclass(frozen=True)
class FunctionSwitch:
    function_name: str
    version: str  # the version the canary moves the alias to
    previous_version: str  # the version it pointed to before: the rollback target
    deployment_id: str = ""


def appspec(function_name: str, alias: str, current: str, target: str) -> str:
    """CodeDeploy's AppSpec for a Lambda deployment: move ``alias`` from ``current`` to ``target``."""
    resource = {"Type": "AWS::Lambda::Function",
                "Properties": {"Name": function_name, "Alias": alias, "CurrentVersion": current,
                               "TargetVersion": target}}  # fmt: skip
    return json.dumps({"version": 0.0, "Resources": [{function_name: resource}]})


@dataclass(frozen=True)
class ModelCanary:
    """``targets``: (serving function, its CodeDeploy deployment group) pairs of ``application``."""

    lambda_client: Any
    codedeploy_client: Any
    application: str
    targets: tuple[tuple[str, str], ...]
    alias: str = "live"

    def publish_version(self, function_name: str, model_version: str) -> str:
        client = self.lambda_client
        config = client.get_function_configuration(FunctionName=function_name)
        variables = {
            **config.get("Environment", {}).get("Variables", {}),
            MODEL_RELEASE_VARIABLE: model_version,
        }
        client.update_function_configuration(FunctionName=function_name, Environment={"Variables": variables})
        client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=WAIT)
        response = client.publish_version(FunctionName=function_name, Description=f"model {model_version}")
        return str(response["Version"])

    def versions_in_use(self, function_name: str) -> set[str]:
        """Every version an alias of the function points to or routes weight to (a canary's)."""
        used: set[str] = set()
        for page in self.lambda_client.get_paginator("list_aliases").paginate(FunctionName=function_name):
            for alias in page.get("Aliases", []):
                used.add(str(alias["FunctionVersion"]))
                routing = alias.get("RoutingConfig") or {}
                used.update(str(version) for version in routing.get("AdditionalVersionWeights") or {})
        return used

    def prune(self, function_name: str, keep: Collection[str]) -> list[str]:
        """Deletes the function's published versions other than ``keep``, ``$LATEST`` and those an alias
        uses; returns the versions deleted. A delete that fails is logged and skipped."""
        kept = {LATEST, *keep, *self.versions_in_use(function_name)}
        paginator = self.lambda_client.get_paginator("list_versions_by_function")
        versions = [  # listed whole before any delete: deleting while paging could skip a version
            str(version["Version"])
            for page in paginator.paginate(FunctionName=function_name)
            for version in page.get("Versions", [])
        ]
        deleted: list[str] = []
        for version in versions:
            if version in kept:
                continue
            try:
                self.lambda_client.delete_function(FunctionName=function_name, Qualifier=version)
            except (ClientError, BotoCoreError) as error:
                logger.warning("version not pruned", extra={"function": function_name, "version": version,
                                                             "error": str(error)})  # fmt: skip
                continue
            deleted.append(version)
        return deleted

    def prune_quietly(self, function_name: str, keep: Collection[str]) -> list[str]:
        """``prune``, whose failure (listing refused, throttled) is logged: the promotion goes on."""
        try:
            deleted = self.prune(function_name, keep)
        except (ClientError, BotoCoreError) as error:
            logger.warning("versions not pruned", extra={"function": function_name, "error": str(error)})
            return []
        if deleted:
            logger.info("old versions deleted", extra={"function": function_name, "versions": deleted})
        return deleted

    def start(self, function_name: str, group: str, model_version: str) -> FunctionSwitch:
        previous = str(
            self.lambda_client.get_alias(FunctionName=function_name, Name=self.alias)["FunctionVersion"]
        )
        version = self.publish_version(function_name, model_version)
        deployment = self.codedeploy_client.create_deployment(
            applicationName=self.application,
            deploymentGroupName=group,
            revision={
                "revisionType": "AppSpecContent",
                "appSpecContent": {"content": appspec(function_name, self.alias, previous, version)},
            },
            description=f"model {model_version}",
        )["deploymentId"]
        logger.info("canary started", extra={"function": function_name, "version": version,
                                             "previous": previous, "deployment": deployment})  # fmt: skip
        self.prune_quietly(function_name, keep=(version, previous))
        return FunctionSwitch(function_name, version, previous, str(deployment))

    def apply(self, model_version: str) -> dict[str, Any]:
        """A canary per serving function; raises ``SwapError`` naming the function that failed."""
        started: list[FunctionSwitch] = []
        for function_name, group in self.targets:
            try:
                started.append(self.start(function_name, group, model_version))
            except Exception as error:
                self.rollback(started)
                raise SwapError(f"could not start the canary of {function_name}: {error}") from error
        return {"application": self.application, "alias": self.alias,
                "functions": [asdict(switch) for switch in started]}  # fmt: skip

    def rollback(self, switches: Sequence[FunctionSwitch]) -> None:
        """Each canary stopped (CodeDeploy would otherwise go on shifting traffic) and each alias back to its
        previous version with all of the traffic (a canary's weight cleared)."""
        for switch in switches:
            if switch.deployment_id:
                try:
                    self.codedeploy_client.stop_deployment(
                        deploymentId=switch.deployment_id, autoRollbackEnabled=True
                    )
                except (ClientError, BotoCoreError) as error:  # already finished: the alias is moved below
                    logger.info(
                        "canary not stopped", extra={"deployment": switch.deployment_id, "error": str(error)}
                    )
            self.lambda_client.update_alias(
                FunctionName=switch.function_name,
                Name=self.alias,
                FunctionVersion=switch.previous_version,
                RoutingConfig={"AdditionalVersionWeights": {}},
            )
            logger.warning("alias flipped back", extra={"function": switch.function_name,
                                                        "version": switch.previous_version})  # fmt: skip
