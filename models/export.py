"""Serving signatures of the exported SavedModel.

The Transform graph is applied inside every signature, so TF Serving receives raw
features and the featurization can never drift between training and serving.

- `serving_default(examples: string[N])`: serialized tf.Examples of raw features, one per
  candidate; returns one tensor per head, named after the head, and `score`.
  A request may carry a `score_weights` float list (one weight per head, config order) to
  override the combined score's exponents; without it the config's weights apply.
- `transform_features(examples)`: the Transform outputs, for TFMA's preprocessing.
- `gate_weights(examples)`: each task's gate weights over the experts (expert utilization).
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.features import SCORE_WEIGHTS_FEATURE, serving_raw_feature_spec
from watchnext.pipeline.configs import Config

import tensorflow as tf

EXAMPLES_INPUT = "examples"
SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
GATES_SIGNATURE = "gate_weights"


def build_signatures(model: Any, tf_transform_output: Any, config: Config) -> dict[str, Any]:
    """Concrete functions for `tf.saved_model.save(model, dir, signatures=...)`."""
    # Tracked as an attribute so its assets (vocabularies) are saved with the model.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serve_spec = serving_raw_feature_spec(raw_spec, config)
    examples_spec = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)

    def _transform(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(examples, serve_spec)
        weights = parsed.pop(SCORE_WEIGHTS_FEATURE)
        transformed = model.tft_layer(parsed)
        transformed[SCORE_WEIGHTS_FEATURE] = weights
        return transformed

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model(_transform(examples), training=False)

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    @tf.function(input_signature=[examples_spec])
    def gate_weights(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.gate_weights(_transform(examples))

    return {
        SERVING_SIGNATURE: serve_examples.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
        GATES_SIGNATURE: gate_weights.get_concrete_function(),
    }


def export_model(model: Any, tf_transform_output: Any, config: Config, export_dir: str) -> None:
    """Write the SavedModel TF Serving loads, with the signatures above."""
    signatures = build_signatures(model, tf_transform_output, config)
    tf.saved_model.save(model, export_dir, signatures=signatures)
