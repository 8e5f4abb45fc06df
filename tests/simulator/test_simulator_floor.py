"""The simulator stands on the floor below serving, models and experiments: its log-writing
modules import none of them (a served-model policy lives in watchnext.experiment)."""

from __future__ import annotations

import ast
import os

import watchnext

import pytest

SIMULATOR = os.path.join(os.path.dirname(watchnext.__file__), "simulator")
# datasets.py featurizes logs with the models' preprocessing for tests and benchmarks; it is
# not on the simulator's serving-free path (nothing below imports it).
MODULES = ("params", "world", "policy", "responses", "logs", "simulate")
FORBIDDEN = ("watchnext.serving", "watchnext.models", "watchnext.experiment", "watchnext.pipeline",
             "watchnext.benchmarks", "tensorflow")


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", MODULES)
def test_the_simulator_imports_no_higher_floor(module):
    imported = _imports(os.path.join(SIMULATOR, f"{module}.py"))
    bad = sorted(n for n in imported if n.startswith(FORBIDDEN))
    assert not bad, f"simulator/{module}.py imports {bad}"


def test_no_simulator_module_is_over_300_lines():
    for module in MODULES:
        with open(os.path.join(SIMULATOR, f"{module}.py"), encoding="utf-8") as f:
            assert sum(1 for _ in f) <= 300, module
