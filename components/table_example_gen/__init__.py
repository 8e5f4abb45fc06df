"""TableExampleGen: rows of CSV or Parquet files → typed, labelled tf.Examples in seeded splits.

The TFX-facing names load lazily, so that `parsing` can be imported without pulling in
TFX's component machinery.
"""

from __future__ import annotations

from watchnext.components.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__, component=("TableExampleGen", "make_table_example_gen", "table_spec"), parsing=("TableSpec",))
