"""Synthesizes the app once per session, with tiny stand-in layer folders, cdk-nag on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

STACKS = ("Merchandiser-Data", "Merchandiser-Streaming", "Merchandiser-Serving", "Merchandiser-Training",
          "Merchandiser-Monitoring", "Merchandiser-Console")  # fmt: skip


def make_tiny_layers(root: Path) -> Path:
    """Layer folders with one small file each: what the stacks need, not the 170 MB of wheels."""
    for name, inner in (("deps", "python"), ("core", "python/merchandiser")):
        folder = root / name / inner
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "README.txt").write_text(f"tiny stand-in for the {name} layer (tests/infra)\n")
    return root


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    templates: dict[str, dict[str, Any]]

    def resources(self, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[stack]["Resources"].items()
            if resource["Type"] == resource_type
        }

    def all_resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for stack in self.templates:
            found.update({f"{stack}/{k}": v for k, v in self.resources(stack, resource_type).items()})
        return found


@pytest.fixture(scope="session")
def tiny_layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_layers(tmp_path_factory.mktemp("layers"))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, tiny_layers: Path) -> Synthesized:
    """The whole app, synthesized with the AwsSolutions plugin: any unacknowledged finding raises here."""
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app(outdir=str(outdir), layers_dir=tiny_layers).synth()
    templates = {name: json.loads((outdir / f"{name}.template.json").read_text()) for name in STACKS}
    return Synthesized(outdir, templates)
