"""The real deps layer: size budget per function, and it imports and works on CPython 3.12 alone.

Builds ``build/layers/deps`` the first time (about a minute; needs the PyPI registry), then reuses
it through the stamp file.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from layers.build import build_core, build_deps, directory_size

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYERS = REPO_ROOT / "build" / "layers"
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # function code + all its layers, unzipped
SERVING = ("retrieval", "ranking", "reranking")
FUNCTIONS = (*SERVING, "events_api", "catalog", "event_processor", "start_training", "publish")

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


def test_each_function_with_its_layers_fits_lambdas_unzipped_limit(deps_layer: Path, tmp_path: Path) -> None:
    core = build_core(tmp_path / "core")
    model = LAYERS / "model"
    sizes = {"deps": directory_size(deps_layer), "core": directory_size(core)}
    sizes["model"] = directory_size(model) if model.is_dir() else 0
    print(f"\nlayers: deps {sizes['deps']:,} B, core {sizes['core']:,} B, model {sizes['model']:,} B"
          + ("" if model.is_dir() else " (build/layers/model not built yet)"))  # fmt: skip
    for name in FUNCTIONS:
        layers = ("deps", "core", "model") if name in SERVING else ("deps", "core")
        code = directory_size(REPO_ROOT / "lambdas" / name)
        total = code + sum(sizes[layer] for layer in layers)
        left = LAMBDA_UNZIPPED_LIMIT - total
        print(f"{name:16s} code {code:>9,} B + {'+'.join(layers):15s} = {total:>12,} B ({left:,} B left)")
        assert total < LAMBDA_UNZIPPED_LIMIT, name


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
