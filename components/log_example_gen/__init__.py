"""LogExampleGen: impression and event logs → labelled tf.Examples (see schema.py for the logs).

The TFX-facing names load lazily, so that `schema` (used by the simulator) can be
imported without pulling in TFX, Beam and TensorFlow.
"""

from __future__ import annotations

from watchnext.components.lazy import lazy_getattr

_EXPORTS = {
    "LogExampleGen": "component",
    "make_log_example_gen": "component",
    "make_output_config": "component",
    "RejectedRecords": "artifacts",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
