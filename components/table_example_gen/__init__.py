"""TableExampleGen: rows of CSV files → typed, labelled tf.Examples in seeded splits.

The TFX-facing names load lazily, so that `parsing` can be imported without pulling in
TFX's component machinery.
"""

from __future__ import annotations

from watchnext.components.lazy import lazy_getattr

_EXPORTS = {
    "TableExampleGen": "component",
    "make_table_example_gen": "component",
    "table_spec": "component",
    "TableSpec": "parsing",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
