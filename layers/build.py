"""Builds the two Lambda layers from wheels, without Docker: dependencies and code only (the model is
fetched from S3 by the serving functions, ``merchandiser.serving.model_source``).

``python -m layers.build deps|core --out DIR``

- deps: the pinned runtime dependencies (``layers/requirements.txt``) as manylinux x86_64
  CPython 3.12 wheels in ``OUT/python``, trimmed, plus ``OUT/lib/libgomp.so.1`` (lightgbm's wheel
  does not bundle the OpenMP runtime and the Lambda runtime is not known to provide it; Lambda
  puts ``/opt/lib`` on ``LD_LIBRARY_PATH``). The copy comes from scikit-learn's manylinux wheel,
  which bundles one. A stamp file holding the hash of the requirements makes re-runs instant.
- core: the ``merchandiser`` package in ``OUT/python/merchandiser``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "layers" / "requirements.txt"
CORE_PACKAGE = REPO_ROOT / "merchandiser"
STAMP_NAME = ".stamp"

PYTHON_VERSION = "3.12"
# manylinux_2_28 first: with manylinux2014 alone pip silently falls back to lightgbm 3.3.5.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
# Provided by the Lambda Python runtime; shipping them again only costs space.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Where libgomp comes from: a manylinux wheel that bundles it (auditwheel graft).
LIBGOMP_DONOR = "scikit-learn"
LIBGOMP_GLOB = "scikit_learn.libs/libgomp-*.so*"
TRIMMED_DIR_NAMES = {"__pycache__", "tests", "test"}
TRIMMED_SUFFIXES = {".pyi", ".pyc", ".pyx", ".pxd"}


def _pip_platform_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def requirements_stamp(requirements: Path = REQUIREMENTS) -> str:
    """Identifies one build: the requirements text plus the options that shape the wheels."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(" ".join([*_pip_platform_args(), *RUNTIME_PROVIDED, LIBGOMP_DONOR]).encode())
    return digest.hexdigest()


def directory_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (what Lambda counts as unzipped size)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _remove_runtime_provided(site: Path) -> None:
    for name in RUNTIME_PROVIDED:
        for entry in [site / name, *site.glob(f"{name}-*.dist-info")]:
            if entry.exists():
                shutil.rmtree(entry)


def trim(site: Path) -> None:
    """Drops what is never imported at run time: bytecode caches, test suites, stubs, sources."""
    for directory in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and directory.name in TRIMMED_DIR_NAMES:
            shutil.rmtree(directory, ignore_errors=True)
    for file in site.rglob("*"):
        if file.is_file() and file.suffix in TRIMMED_SUFFIXES:
            file.unlink()


def fetch_libgomp(destination: Path) -> Path:
    """Extracts a manylinux libgomp from the donor wheel into ``destination/libgomp.so.1``."""
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp,
             *_pip_platform_args(), LIBGOMP_DONOR],
            check=True,
        )  # fmt: skip
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if Path(n).match(LIBGOMP_GLOB)]
            if not members:
                raise RuntimeError(f"{wheel.name} bundles no libgomp ({LIBGOMP_GLOB})")
            target = destination / "libgomp.so.1"
            target.write_bytes(archive.read(members[0]))
    target.chmod(0o755)
    return target


def build_deps(out: Path, requirements: Path = REQUIREMENTS, force: bool = False) -> Path:
    """Installs the pinned wheels into ``out/python`` and libgomp into ``out/lib``."""
    stamp = requirements_stamp(requirements)
    stamp_file = out / STAMP_NAME
    if not force and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        print(f"deps layer in {out} is up to date ({stamp[:12]})")
        return out
    if out.exists():
        shutil.rmtree(out)
    site = out / "python"
    site.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", *_pip_platform_args(), "--target", str(site), "-r", str(requirements)],
        check=True,
    )  # fmt: skip
    _remove_runtime_provided(site)
    trim(site)
    fetch_libgomp(out / "lib")
    stamp_file.write_text(stamp + "\n")
    print(f"deps layer built in {out}: {directory_size(out) / 2**20:.1f} MiB unzipped")
    return out


def _copy_fresh(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build_core(out: Path, package: Path = CORE_PACKAGE) -> Path:
    """Copies the core library to ``out/python/merchandiser``."""
    _copy_fresh(package, out / "python" / package.name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layers.build", description=__doc__.splitlines()[0])
    parser.add_argument("layer", choices=["deps", "core"])
    parser.add_argument("--out", type=Path, required=True, help="layer directory to (re)build")
    parser.add_argument("--force", action="store_true", help="deps: rebuild even if the stamp matches")
    args = parser.parse_args(argv)
    if args.layer == "deps":
        build_deps(args.out, force=args.force)
    else:
        build_core(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
