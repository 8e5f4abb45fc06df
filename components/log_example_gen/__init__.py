"""LogExampleGen: impression and event logs → labelled tf.Examples (see schema.py for the logs).

The TFX-facing names load lazily, so that `schema` (used by the simulator) can be
imported without pulling in TFX, Beam and TensorFlow.
"""

from __future__ import annotations

from watchnext.components.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__, component=("LogExampleGen", "make_log_example_gen", "make_output_config"))
