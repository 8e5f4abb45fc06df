"""The package's floors (docs/architecture.md), enforced on its imports.

Every module of the installed package (the repository root's .py files and every folder
with an __init__.py, as setup.py installs them) is read with `ast`; each import of one of
watchnext's own modules, wherever it sits in the file (top level, inside a function, under
TYPE_CHECKING), is an edge. A module may import its own floor or a lower one, never a
higher one; on floor 1 the folders do not import each other except as SIDEWAYS allows;
and no set of modules may import each other in a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "watchnext"

# Module (or folder) → floor, by the longest matching prefix of its name inside the package.
# "" is the package's own __init__.py.
FLOORS: dict[str, int] = {
    "": 0,
    "core": 0,
    "components": 1,
    "models": 1,
    "serving": 1,
    "simulator": 1,
    "pipeline": 2,
    "pipeline.local_runner": 3,
    "kubeflow": 3,
    # Live experiments and the closed loop: they serve pushed models and run the daily job.
    "experiment": 3,
    "cli": 4,
    "__main__": 4,
}
FLOOR_NAMES = {0: "core", 1: "components/models/serving/simulator", 2: "pipeline", 3: "runners", 4: "cli"}

# Floor-1 folders that may import another floor-1 folder: the simulator writes the logs
# LogExampleGen reads and scores models in process as the pipeline would.
SIDEWAYS: frozenset[tuple[str, str]] = frozenset({("simulator", "models"), ("simulator", "components")})

# Known violations that the other re-layering branches remove; the lead empties this at merge.
# Each entry must still occur (a stale entry fails the test), so the list only shrinks.
ALLOWED: frozenset[tuple[str, str]] = frozenset({
})


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int


def setup_subpackages(root: Path) -> set[str]:
    """setup.py's SUBPACKAGES: the top-level folders the distribution installs (read, not imported)."""
    setup_py = root / "setup.py"
    if not setup_py.is_file():  # a test's synthetic package: every folder is installed
        return {p.name for p in root.iterdir() if p.is_dir()}
    for node in ast.parse(setup_py.read_text(encoding="utf-8")).body:
        names = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
        if isinstance(node, ast.Assign) and "SUBPACKAGES" in names:
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"{setup_py}: no SUBPACKAGES list")


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """{dotted module name: file} of what setup.py installs: the root's modules and every folder
    reachable from it through __init__.py files."""
    modules: dict[str, Path] = {}
    installed = setup_subpackages(root)

    def walk(folder: Path, name: str) -> None:
        for path in sorted(folder.iterdir()):
            if path.is_dir() and (path / "__init__.py").is_file():
                if folder != root or path.name in installed:  # bench/, tests/: not installed
                    walk(path, f"{name}.{path.name}")
            elif path.suffix == ".py":
                modules[name if path.name == "__init__.py" else f"{name}.{path.stem}"] = path

    walk(root, package)
    return modules


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module `name` names, or the nearest enclosing package of it that is one of ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(modules: Mapping[str, Path], package: str) -> list[Edge]:
    """Every import of one of the package's modules, from one of its modules (first line each)."""
    edges: dict[tuple[str, str], Edge] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package upwards
                    parts = module.split(".")[: len(module.split(".")) - (0 if is_package else 1)]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                # `from pkg import sub` imports the module pkg.sub when there is one.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target != package and not target.startswith(package + "."):
                    continue
                imported = _resolve(target, modules)
                if imported and imported != module and (module, imported) not in edges:
                    edges[module, imported] = Edge(module, imported, node.lineno)
    return sorted(edges.values(), key=lambda e: (e.importer, e.line, e.imported))


def floor_of(module: str, package: str, floors: Mapping[str, int]) -> tuple[str, int]:
    """(the FLOORS key that places `module`, its floor); KeyError names a module no floor holds."""
    inner = module[len(package) + 1:] if module != package else ""
    parts = inner.split(".") if inner else []
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in floors:
            return key, floors[key]
    if not inner and "" in floors:
        return "", floors[""]
    raise KeyError(f"{module} is on no floor: add its folder to FLOORS (docs/architecture.md)")


def layer_violations(edges: Iterable[Edge], package: str, floors: Mapping[str, int],
                     sideways: frozenset[tuple[str, str]]) -> list[str]:
    """Imports from a lower floor to a higher one, and between different floor-1 folders."""
    problems = []
    for e in edges:
        (key_a, a), (key_b, b) = floor_of(e.importer, package, floors), floor_of(e.imported, package, floors)
        top_a, top_b = key_a.split(".")[0], key_b.split(".")[0]
        if a < b:
            problems.append(f"{e.importer} (line {e.line}) imports {e.imported}: floor {a} "
                            f"({FLOOR_NAMES.get(a, a)}) may not import floor {b} ({FLOOR_NAMES.get(b, b)})")
        elif a == b == 1 and top_a != top_b and (top_a, top_b) not in sideways:
            problems.append(f"{e.importer} (line {e.line}) imports {e.imported}: {top_a}/ and {top_b}/ "
                            f"share floor 1 and may not import each other")
    return problems


def cycles(edges: Iterable[Edge]) -> list[str]:
    """Each set of modules that import each other in a loop, as the loop's edges with their lines."""
    graph: dict[str, list[Edge]] = {}
    for e in edges:
        graph.setdefault(e.importer, []).append(e)
        graph.setdefault(e.imported, [])
    # Tarjan's strongly connected components, iteratively (no recursion limit on deep chains).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            out = graph[node]
            if i < len(out):
                work.append((node, i + 1))
                nxt = out[i].imported
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    problems = []
    for component in sorted(components):
        members = set(component)
        loop = [f"{e.importer} (line {e.line}) imports {e.imported}"
                for m in component for e in graph[m] if e.imported in members]
        problems.append("import cycle between " + ", ".join(component) + ": " + "; ".join(loop))
    return problems


def check(root: Path, package: str, floors: Mapping[str, int] = FLOORS,
          sideways: frozenset[tuple[str, str]] = SIDEWAYS,
          allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Every layering problem of the package at `root`, one message each (empty: none)."""
    edges = import_edges(package_modules(root, package), package)
    present = {(e.importer, e.imported) for e in edges}
    stale = [f"ALLOWED lists {a} → {b}, which no longer occurs: remove it"
             for a, b in sorted(allowed - present)]
    kept = [e for e in edges if (e.importer, e.imported) not in allowed]
    return stale + layer_violations(kept, package, floors, sideways) + cycles(kept)


def test_the_package_imports_only_downwards_and_without_cycles():
    problems = check(ROOT, PACKAGE, allowed=ALLOWED)
    assert not problems, "\n".join(problems)


def test_core_imports_nothing_heavy():
    """core/ is what the CLI checks a user's input with before TensorFlow loads: stdlib (and yaml) only."""
    modules = package_modules(ROOT, PACKAGE)
    allowed_roots = {"__future__", PACKAGE, "yaml"}
    for module, path in modules.items():
        if not module.startswith(f"{PACKAGE}.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                assert top in allowed_roots or _is_stdlib(top), (
                    f"{module} (line {node.lineno}) imports {name}")


def test_every_installed_module_over_300_lines_is_named_in_docs_architecture():
    """A file holds one concept; the few longer than 300 lines are listed, each with its concept, in
    docs/architecture.md, and that list stays true: a module growing past 300 lines fails here
    until it is split or listed, and a listed one that shrank must leave the list."""
    import re

    long = {str(path.relative_to(ROOT)) for path in package_modules(ROOT, PACKAGE).values()
            if len(path.read_text(encoding="utf-8").splitlines()) > 300}
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Files over 300 lines", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+\.py)` \|", section, flags=re.M))
    assert long == listed, f"over 300 lines: {sorted(long)}; listed: {sorted(listed)}"


def _is_stdlib(name: str) -> bool:
    import sys

    return name in sys.stdlib_module_names


# ---------------------------------------------------------------------------
# The checker itself, on a tiny package built here.


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    for rel, text in {"__init__.py": "", **files}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


FAKE_FLOORS = {"": 0, "core": 0, "models": 1, "serving": 1, "pipeline": 2}


def _fake(tmp_path: Path, extra: Mapping[str, str] | None = None) -> Path:
    files = {"core/__init__.py": "", "core/names.py": "X = 1\n",
             "models/__init__.py": "", "models/model.py": "from fake.core.names import X\n",
             "serving/__init__.py": "", "serving/client.py": "from fake.core import names\n",
             "pipeline/__init__.py": "", "pipeline/build.py": "import fake.models.model\n",
             "scripts/tool.py": "from fake.pipeline.build import nothing\n"}  # no __init__: not the package
    return _package(tmp_path, {**files, **(extra or {})})


def test_a_clean_fake_package_passes(tmp_path):
    root = _fake(tmp_path)
    assert set(package_modules(root, "fake")) == {
        "fake", "fake.core", "fake.core.names", "fake.models", "fake.models.model", "fake.serving",
        "fake.serving.client", "fake.pipeline", "fake.pipeline.build"}
    assert check(root, "fake", FAKE_FLOORS, frozenset()) == []


def test_a_planted_upward_import_is_caught_with_both_modules_and_the_line(tmp_path):
    root = _fake(tmp_path, {"core/more.py": "import os\n\n\ndef f():\n    from fake.pipeline import build\n"})
    (problem,) = check(root, "fake", FAKE_FLOORS, frozenset())
    assert problem.startswith("fake.core.more (line 5) imports fake.pipeline.build: floor 0")
    assert "may not import floor 2" in problem


def test_a_planted_sideways_import_on_floor_one_is_caught_unless_allowed(tmp_path):
    root = _fake(tmp_path, {"serving/client.py": "from fake.models.model import X\n"})
    (problem,) = check(root, "fake", FAKE_FLOORS, frozenset())
    assert "fake.serving.client (line 1) imports fake.models.model" in problem and "share floor 1" in problem
    assert check(root, "fake", FAKE_FLOORS, frozenset({("serving", "models")})) == []


def test_a_planted_cycle_is_caught_even_through_a_relative_deferred_import(tmp_path):
    root = _fake(tmp_path, {"models/train.py": "from fake.models import tune\n",
                            "models/tune.py": "def fn():\n    from .train import run\n"})
    (problem,) = check(root, "fake", FAKE_FLOORS, frozenset())
    assert problem.startswith("import cycle between fake.models.train, fake.models.tune")
    assert "fake.models.train (line 1) imports fake.models.tune" in problem
    assert "fake.models.tune (line 2) imports fake.models.train" in problem


def test_an_allowed_pair_silences_one_edge_and_a_stale_one_is_reported(tmp_path):
    root = _fake(tmp_path, {"core/more.py": "from fake.pipeline import build\n"})
    assert check(root, "fake", FAKE_FLOORS, frozenset(), {("fake.core.more", "fake.pipeline.build")}) == []
    (stale,) = check(_fake(tmp_path / "clean"), "fake", FAKE_FLOORS, frozenset(),
                     {("fake.core.more", "fake.pipeline.build")})
    assert "no longer occurs" in stale


def test_a_module_on_no_floor_is_named(tmp_path):
    root = _fake(tmp_path, {"extra/__init__.py": "", "extra/thing.py": "from fake.core import names\n"})
    with pytest.raises(KeyError, match=r"fake\.extra\.thing is on no floor"):
        check(root, "fake", FAKE_FLOORS, frozenset())
