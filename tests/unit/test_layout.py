"""The core library's layout: imports run one way through the stages, with no circle anywhere, and code
outside the library imports only each package's public face (its ``__init__``).

    api → serving / stream / publishing → experiments → reranking → ranking → retrieval
        → shopper → catalog → store → (root modules: settings, errors, schemas)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "merchandiser"
# A module may import its own package and any package of a lower rank; the root modules import only
# each other. Packages of the same rank (serving, stream, publishing) never import each other.
RANKS = {
    "store": 1,
    "catalog": 2,
    "shopper": 3,
    "retrieval": 4,
    "ranking": 5,
    "reranking": 6,
    "experiments": 7,
    "serving": 8,
    "stream": 8,
    "publishing": 8,
    "api": 9,
}
MAX_ROOT_MODULES = 8
OUTSIDE = ("lambdas", "training", "local_twin", "stacks", "layers", "app.py")


def imports(path: Path, submodules: bool = True) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of ``merchandiser`` in a file, nested ones included.

    ``from merchandiser.x import y`` imports ``merchandiser.x.y`` when y is a module of x (and x itself
    only for the names that are not): with ``submodules`` False, it is ``merchandiser.x`` whatever y is,
    as code outside the library sees it."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "merchandiser":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "merchandiser":
            modules = [
                f"{node.module}.{a.name}" for a in node.names if module_path(f"{node.module}.{a.name}")
            ]
            if not submodules or len(modules) < len(node.names):
                yield node.lineno, node.module
            if submodules:
                for module in modules:
                    yield node.lineno, module


def module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str | None:
    """The package a module belongs to (``merchandiser.retrieval.ann`` → retrieval); None at the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else None


def library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def test_the_library_is_a_few_root_modules_and_stage_packages() -> None:
    root_modules = [p.name for p in LIBRARY.glob("*.py") if p.name != "__init__.py"]
    packages = [p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()]
    assert len(root_modules) <= MAX_ROOT_MODULES, root_modules
    assert len(packages) >= 4 and set(packages) <= set(RANKS), packages


def test_imports_run_one_way_through_the_stages() -> None:
    offences = []
    for path in library_files():
        here = module_name(path)
        for line, imported in imports(path):
            source, target = stage(here), stage(imported)
            if imported == "merchandiser" or source == target:
                continue
            if source is None and target is not None:
                offences.append(f"{path.relative_to(ROOT)}:{line}: root module {here} imports {imported}")
            elif source is not None and target is not None and RANKS[target] >= RANKS[source]:
                offences.append(
                    f"{path.relative_to(ROOT)}:{line}: {source} (rank {RANKS[source]}) imports {imported}"
                    f" ({target}, rank {RANKS[target]}): imports must run down the stages"
                )
    assert not offences, "\n".join(offences)


def test_there_is_no_import_circle_in_the_library() -> None:
    graph: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], str] = {}
    for path in library_files():
        here = module_name(path)
        for line, imported in imports(path):
            if module_path(imported) is not None and imported != here:
                graph.setdefault(here, set()).add(imported)
                lines[(here, imported)] = f"{path.relative_to(ROOT)}:{line}"
    circle = find_circle(graph)
    assert circle is None, "import circle: " + " → ".join(
        f"{module} ({lines[(module, circle[i + 1])]})" for i, module in enumerate(circle[:-1])
    )


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path that comes back to its start, by depth-first search, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_code_outside_the_library_imports_only_public_faces() -> None:
    offences = []
    for name in OUTSIDE:
        target = ROOT / name
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            for line, imported in imports(path, submodules=False):
                parts = imported.split(".")
                if len(parts) > 2 or (
                    len(parts) == 2 and stage(imported) is None and (LIBRARY / parts[1]).is_dir()
                ):
                    offences.append(f"{path.relative_to(ROOT)}:{line}: imports {imported}")
    assert not offences, "use the package's public face instead:\n" + "\n".join(offences)


def test_the_checks_find_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    # Given a store module importing serving, and two modules importing each other
    bad = tmp_path / "bad.py"
    bad.write_text("from merchandiser.serving import Recommender\nimport merchandiser.store.dynamo\n")
    assert [imported for _, imported in imports(bad)] == ["merchandiser.serving", "merchandiser.store.dynamo"]
    assert RANKS[stage("merchandiser.serving") or ""] > RANKS[stage("merchandiser.store.dynamo") or ""]
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": {"c"}}) is None
