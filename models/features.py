"""Feature names and specs derived from the config, shared by Transform, Trainer and export.

Nothing here defines a name: every name comes from `core.config.Config`. This
module only answers questions about them ("which raw columns does serving parse?",
"how big is each vocabulary?") so the answer is computed in one place.
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.core.contract import SCORE_WEIGHTS_FEATURE

import tensorflow as tf

# Padding value for multivalent id features after Transform, and "missing" for position.
MISSING_ID = -1


def vocabulary_names(config: Config) -> list[str]:
    """Distinct vocabularies, in the order their first feature is listed."""
    return list(dict.fromkeys(f.vocabulary for f in config.features.ids))


def vocab_sizes(tf_transform_output: Any, config: Config) -> dict[str, int]:
    """Vocabulary sizes (without OOV buckets) as computed by Transform."""
    return {name: int(tf_transform_output.vocabulary_size_by_name(name)) for name in vocabulary_names(config)}


def non_input_columns(config: Config) -> set[str]:
    """Raw columns that are never model inputs at serving: labels and bias features."""
    return set(config.label_keys) | ({config.features.position} if config.features.position else set())


def serving_raw_feature_spec(raw_feature_spec: dict[str, Any], config: Config) -> dict[str, Any]:
    """The parse spec of `serving_default`: raw inputs only, no labels and no position.

    Position is left out on purpose (the paper serves with position "missing"), so a
    client never needs to send it and cannot bias the served score with it. Columns
    the model does not use (request_id, timestamp, ...) are dropped so clients need
    not send them either.
    """
    used = {f.name for f in config.features.ids} | set(config.features.numeric)
    spec = {k: v for k, v in raw_feature_spec.items() if k in used and k not in non_input_columns(config)}
    missing = used - set(spec)
    if missing:
        raise ValueError(f"the schema has no column for model input(s) {sorted(missing)}; "
                         "check features.ids / features.numeric in the config against the data")
    spec[SCORE_WEIGHTS_FEATURE] = tf.io.FixedLenFeature(
        [len(config.heads)], tf.float32, default_value=[h.score_weight for h in config.heads])
    return spec
