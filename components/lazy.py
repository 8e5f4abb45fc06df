"""Lazy package exports: a component package's light modules import without TFX.

A package lists {name: submodule} and gets a module-level `__getattr__` that imports
the submodule on first use (PEP 562), so `schema`/`parsing` stay cheap to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A `__getattr__` for `package` that loads `exports[name]` from its submodule on demand."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
