"""TableExampleGen: rows of CSV files → typed, labelled tf.Examples in seeded splits.

The TFX-facing names load lazily, so that `parsing` can be imported without pulling in
TFX's component machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TableExampleGen": "component",
    "make_table_example_gen": "component",
    "table_spec": "component",
    "TableSpec": "parsing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
