"""Blue/green model swap: a promoted model becomes a new model-layer version behind each serving alias.

For each serving function: point its ``$LATEST`` configuration at the new model layer (the deps and
core layers stay), wait for the update, publish an immutable version, then move the ``live`` alias
(the one API Gateway invokes) to it. Moving an alias is one atomic API call, so every invocation of a
function runs either the old version or the new one, never a mix; a recommendation request runs its
three stages in one process, so it never mixes models either. Across functions there is a window of
a few hundred milliseconds in which e.g. retrieval already serves the new model and ranking the old.

Rollback flips each alias back to the version it pointed to before (recorded per function), which
is again one atomic call per function and needs no rebuild: the old versions are immutable.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from merchandiser.store import SERVING_FILES

logger = logging.getLogger(__name__)

LAYER_ZIP = "layer.zip"
LAYER_ROOT = "model"  # a layer unpacks under /opt: the model dir is /opt/model (ServingSettings.model_dir)
RUNTIME = "python3.12"
ARCHITECTURE = "x86_64"
WAIT = {"Delay": 1, "MaxAttempts": 120}  # a configuration update usually settles in a few seconds


class SwapError(RuntimeError):
    """A serving function could not be switched; the functions already switched were flipped back."""


@dataclass(frozen=True)
class FunctionSwitch:
    function_name: str
    version: str  # the version the alias points to now
    previous_version: str  # the version it pointed to before: the rollback target


def zip_model_layer(model_dir: Path, target: Path) -> Path:
    """The serving files of ``model_dir`` under ``model/`` (what ``layers.build model`` lays out)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in SERVING_FILES:
            if (model_dir / name).is_file():
                archive.write(model_dir / name, f"{LAYER_ROOT}/{name}")
    return target


def layer_name_of(arn: str) -> str:
    """``arn:aws:lambda:region:account:layer:NAME:VERSION`` -> ``NAME``."""
    parts = arn.split(":")
    if len(parts) < 8 or parts[5] != "layer":
        raise ValueError(f"not a layer version ARN: {arn}")
    return parts[6]


def with_layer(current: Sequence[str], layer_arn: str) -> list[str]:
    """``current`` with the version of ``layer_arn``'s layer replaced (in place) or appended."""
    name = layer_name_of(layer_arn)
    replaced = [layer_arn if layer_name_of(arn) == name else arn for arn in current]
    return replaced if layer_arn in replaced else [*current, layer_arn]


@dataclass(frozen=True)
class ModelSwap:
    """``lambda_client`` is a boto3 Lambda client; ``layer_name`` the model layer's name."""

    lambda_client: Any
    layer_name: str
    function_names: tuple[str, ...]
    alias: str = "live"

    def publish_layer(self, bucket: str, key: str, model_version: str) -> str:
        response = self.lambda_client.publish_layer_version(
            LayerName=self.layer_name,
            Description=f"Merchandiser model {model_version}",
            Content={"S3Bucket": bucket, "S3Key": key},
            CompatibleRuntimes=[RUNTIME],
            CompatibleArchitectures=[ARCHITECTURE],
        )
        return str(response["LayerVersionArn"])

    def switch(self, function_name: str, layer_arn: str, model_version: str) -> FunctionSwitch:
        client = self.lambda_client
        previous = client.get_alias(FunctionName=function_name, Name=self.alias)["FunctionVersion"]
        config = client.get_function_configuration(FunctionName=function_name)
        layers = with_layer([layer["Arn"] for layer in config.get("Layers", [])], layer_arn)
        client.update_function_configuration(FunctionName=function_name, Layers=layers)
        client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=WAIT)
        version = client.publish_version(FunctionName=function_name, Description=f"model {model_version}")[
            "Version"
        ]
        client.update_alias(FunctionName=function_name, Name=self.alias, FunctionVersion=version)
        logger.info(
            "alias moved",
            extra={"function": function_name, "alias": self.alias, "version": version, "previous": previous},
        )
        return FunctionSwitch(function_name, str(version), str(previous))

    def apply(self, bucket: str, key: str, model_version: str) -> dict[str, Any]:
        """Publishes the layer from ``s3://bucket/key`` and switches every function; all or none."""
        layer_arn = self.publish_layer(bucket, key, model_version)
        done: list[FunctionSwitch] = []
        for function_name in self.function_names:
            try:
                done.append(self.switch(function_name, layer_arn, model_version))
            except Exception as error:
                self.rollback(done)
                raise SwapError(f"could not switch {function_name} to {layer_arn}: {error}") from error
        return {
            "layer_version_arn": layer_arn,
            "alias": self.alias,
            "functions": [asdict(switch) for switch in done],
        }

    def rollback(self, switches: Sequence[FunctionSwitch]) -> None:
        """Each alias back to its previous version (the ``$LATEST`` configuration is left as is:
        nothing invokes it, and the next swap rewrites it)."""
        for switch in switches:
            self.lambda_client.update_alias(
                FunctionName=switch.function_name, Name=self.alias, FunctionVersion=switch.previous_version
            )
            logger.warning(
                "alias flipped back",
                extra={"function": switch.function_name, "version": switch.previous_version},
            )
