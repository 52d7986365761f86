"""The real deps layer: size budget per function (from the synthesized template: code plus the layers each
function has, under Lambda's 250 MB with margin; no layer holds a model), and it imports and works on
CPython 3.12 alone.

Builds ``build/layers/deps`` the first time (about a minute; needs the PyPI registry), then reuses
it through the stamp file.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from layers.build import build_core, build_deps, directory_size

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYERS = REPO_ROOT / "build" / "layers"
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # function code + all its layers, unzipped
# What a function and its layers may take: 10% of the limit is kept free (a dependency upgrade, a new
# wheel), since the model no longer has to fit in what is left.
BUDGET = int(0.9 * LAMBDA_UNZIPPED_LIMIT)
FUNCTIONS = ("retrieval", "ranking", "reranking", "events_api", "catalog", "experiments", "event_processor",
             "trending_compactor", "start_training", "publish")  # fmt: skip

SMOKE = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, lightgbm, hnswlib
assert lightgbm.__file__.startswith(sys.argv[1]), lightgbm.__file__
X = np.arange(20, dtype=float).reshape(10, 2)
y = np.arange(10) % 2
params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 1, "min_data_in_bin": 1}
booster = lightgbm.train(params, lightgbm.Dataset(X, y), num_boost_round=3)
assert booster.predict(X).shape == (10,)
index = hnswlib.Index(space="ip", dim=2)
index.init_index(max_elements=10)
index.add_items(X.astype("float32"))
labels, _ = index.knn_query(X[:1].astype("float32"), k=2)
assert labels.shape == (1, 2)
import aws_lambda_powertools, pydantic
print("ok", np.__version__, lightgbm.__version__)
"""


def python312() -> str | None:
    """A CPython 3.12 that actually runs (a pyenv shim may exist without a 3.12 selected)."""
    candidates = [
        shutil.which("python3.12"),
        *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        check = subprocess.run([candidate, "-I", "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)  # fmt: skip
        if check.returncode == 0 and check.stdout.strip() == "(3, 12)":
            return candidate
    return None


@pytest.fixture(scope="module")
def deps_layer() -> Path:
    return build_deps(LAYERS / "deps")


def asset_sizes(outdir: Path, template: dict[str, Any]) -> dict[str, int]:
    """Bytes of each resource's staged asset folder (code and layers), by logical id."""
    sizes = {}
    for logical_id, resource in template["Resources"].items():
        path = resource.get("Metadata", {}).get("aws:asset:path")
        if path and (outdir / path).is_dir():
            sizes[logical_id] = directory_size(outdir / path)
    return sizes


def test_each_function_of_the_template_fits_lambdas_unzipped_limit_with_margin(
    deps_layer: Path, tmp_path: Path
) -> None:
    from app import build_app

    # Given the app synthesized with the real layers (the deps layer as built, the core library)
    build_core(tmp_path / "layers" / "core")
    (tmp_path / "layers" / "deps").symlink_to(deps_layer.resolve())
    outdir = tmp_path / "cdk.out"
    build_app(
        outdir=str(outdir),
        layers_dir=tmp_path / "layers",
        context={"merchandiser:cdkNag": "false", "aws:cdk:enable-asset-metadata": True},
    ).synth()
    checked = 0
    for template_path in sorted(outdir.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        sizes = asset_sizes(outdir, template)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function" or logical_id.startswith("CustomCDK"):
                continue  # the CDK's own handlers (the console's BucketDeployment, its CLI layer)
            props = resource["Properties"]
            layers = [layer["Ref"] for layer in props.get("Layers", [])]
            # Then code plus its layers (each a staged asset of this template) stays within the budget
            assert all(layer in sizes for layer in layers), (logical_id, layers)
            total = sizes.get(logical_id, 0) + sum(sizes[layer] for layer in layers)
            name = props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            print(
                f"{name:32s} {len(layers)} layers  {total:>12,} B  ({LAMBDA_UNZIPPED_LIMIT - total:,} B left)"
            )
            assert len(layers) == 2, name  # deps and core: never a model
            assert total < BUDGET, name
            checked += 1
    assert checked == len(FUNCTIONS) + 2  # and the experiment report job and the archive eraser


def test_deps_layer_imports_and_works_on_python312_in_isolation(deps_layer: Path) -> None:
    interpreter = python312()
    if interpreter is None:
        pytest.skip("no CPython 3.12 interpreter on this machine (python3.12 or ~/.pyenv/versions/3.12*)")
    env = {"PATH": os.environ.get("PATH", ""), "LD_LIBRARY_PATH": str(deps_layer / "lib")}
    result = subprocess.run(
        [interpreter, "-I", "-B", "-c", SMOKE, str(deps_layer / "python")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


def test_lightgbm_resolves_libgomp_to_the_layers_copy(deps_layer: Path) -> None:
    library = deps_layer / "python" / "lightgbm" / "lib" / "lib_lightgbm.so"
    env = {"PATH": os.environ.get("PATH", ""), "LD_LIBRARY_PATH": str(deps_layer / "lib")}
    result = subprocess.run(["ldd", str(library)], env=env, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if "libgomp.so.1" in line)
    assert str(deps_layer / "lib" / "libgomp.so.1") in line, line


def test_runtime_provided_packages_are_not_shipped(deps_layer: Path) -> None:
    site = deps_layer / "python"
    assert not (site / "boto3").exists() and not (site / "botocore").exists()
    assert not list(site.rglob("*.pyi"))
