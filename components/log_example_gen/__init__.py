"""LogExampleGen: impression and event logs → labelled tf.Examples (see schema.py for the logs).

The TFX-facing names load lazily, so that `schema` (used by the simulator) can be
imported without pulling in TFX, Beam and TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LogExampleGen": "component",
    "make_log_example_gen": "component",
    "make_output_config": "component",
    "RejectedRecords": "artifacts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
