"""Lazy package exports: a component package's light modules import without TFX.

A package names its submodules and what each exports, and gets a module-level
`__getattr__` that imports the submodule on first use (PEP 562) and its `__all__`, so
`schema`/`parsing` stay cheap to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, **names_by_submodule: tuple[str, ...]
                 ) -> tuple[Callable[[str], Any], list[str]]:
    """(`__getattr__`, `__all__`) for `package`: each name loads from its submodule on demand."""
    exports = {name: submodule for submodule, names in names_by_submodule.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__, sorted(exports)
