"""Serving signatures of the exported SavedModel.

The Transform graph is applied inside every signature, so TF Serving receives raw
features and the featurization can never drift between training and serving.

- `serving_default(examples: string[N])`: serialized tf.Examples of raw features, one per
  candidate; returns one tensor per head, named after the head, and `score`.
  A request may carry a `score_weights` float list (one weight per head, config order) to
  override the combined score's exponents; without it the config's weights apply.
- `serving_raw(<one named tensor per raw feature>)`: the same outputs for clients that
  send JSON (TF Serving REST) rather than tf.Examples: one row per candidate; strings,
  int64 and float32 as in the log schema, multivalent features as a [N, L] string
  matrix padded with "". `serving_raw_weighted` also takes `score_weights` [N, heads].
  (TF Serving requires every input of a signature, hence two signatures.)
- `transform_features(examples)`: the Transform outputs, for TFMA's preprocessing.
- `gate_weights(examples)`: each task's gate weights over the experts (expert utilization).
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.core.contract import EXAMPLES_INPUT, SCORE_WEIGHTS_FEATURE, SERVING_SIGNATURE
from watchnext.models.features import serving_raw_feature_spec

import tensorflow as tf

RAW_SIGNATURE = "serving_raw"
RAW_WEIGHTED_SIGNATURE = "serving_raw_weighted"
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

    raw_inputs = {k: v for k, v in serve_spec.items() if k != SCORE_WEIGHTS_FEATURE}
    raw_signature = {
        name: tf.TensorSpec([None] if isinstance(spec, tf.io.FixedLenFeature) else [None, None],
                            spec.dtype, name=name)
        for name, spec in sorted(raw_inputs.items())
    }

    def _from_tensors(tensors: dict[str, tf.Tensor]) -> dict[str, Any]:
        """Named [N] / [N, L] tensors → what parse_example would have produced."""
        parsed: dict[str, Any] = {}
        for name, spec in raw_inputs.items():
            value = tensors[name]
            if isinstance(spec, tf.io.FixedLenFeature):
                parsed[name] = tf.reshape(value, [-1, *spec.shape])
            else:
                parsed[name] = tf.sparse.from_dense(value)  # drops "" padding
        return parsed

    @tf.function(input_signature=[raw_signature])
    def serve_raw(tensors: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return model(model.tft_layer(_from_tensors(tensors)), training=False)

    weights_spec = tf.TensorSpec([None, len(config.heads)], tf.float32, name=SCORE_WEIGHTS_FEATURE)

    @tf.function(input_signature=[raw_signature, weights_spec])
    def serve_raw_weighted(tensors: dict[str, tf.Tensor], weights: tf.Tensor) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(_from_tensors(tensors))
        transformed[SCORE_WEIGHTS_FEATURE] = weights
        return model(transformed, training=False)

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    @tf.function(input_signature=[examples_spec])
    def gate_weights(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.gate_weights(_transform(examples))

    return {
        SERVING_SIGNATURE: serve_examples.get_concrete_function(),
        RAW_SIGNATURE: serve_raw.get_concrete_function(),
        RAW_WEIGHTED_SIGNATURE: serve_raw_weighted.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
        GATES_SIGNATURE: gate_weights.get_concrete_function(),
    }


def export_model(model: Any, tf_transform_output: Any, config: Config, export_dir: str) -> None:
    """Write the SavedModel TF Serving loads, with the signatures above."""
    signatures = build_signatures(model, tf_transform_output, config)
    tf.saved_model.save(model, export_dir, signatures=signatures)
