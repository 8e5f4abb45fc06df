"""tf.Transform `preprocessing_fn`: the featurization that runs in training and in serving.

What it produces (the model's input contract):
- every id feature: int64 [B] index into its vocabulary (shared by features with the same
  `vocabulary`, e.g. query video, candidate video and watch history), with OOV buckets;
- multivalent id features: int64 [B, max_length], padded with -1;
- numeric features: float32 [B], log1p first where configured, then z-scored;
- position: int64 [B], -1 where missing, clipped to max_position - 1 (no output when
  features.position is empty: data without positions, such as a table);
- labels and presence indicators: float32 [B], passed through.

Position and labels are outputs of their own, so when serving omits them the
Transform graph prunes exactly those outputs and nothing else.
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.features import MISSING_ID
from watchnext.pipeline.configs import Config

import tensorflow as tf
import tensorflow_transform as tft

# Key of the config JSON inside Transform's and Trainer's custom_config.
CONFIG_KEY = "watchnext_config"


def _dense(x: tf.Tensor | tf.SparseTensor, default: Any) -> tf.Tensor:
    """A [B] tensor from a [B], [B, 1] dense or [B, 1] sparse (optional) column."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.sparse.reset_shape(x, [x.dense_shape[0], 1]), default_value=default)
    if x.shape.rank == 2:
        x = x[:, 0]
    return x


def _values(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """All values of a column as one flat tensor (for analyzers over shared vocabularies)."""
    if isinstance(x, tf.SparseTensor):
        return x.values
    return tf.reshape(x, [-1])


def _padded(x: tf.SparseTensor, length: int) -> tf.Tensor:
    """The first `length` ids of each row of a [B, ?] sparse tensor, padded with MISSING_ID."""
    batch = x.dense_shape[0]
    x = tf.sparse.slice(x, [0, 0], tf.stack([batch, tf.constant(length, tf.int64)]))
    x = tf.sparse.reset_shape(x, tf.stack([batch, tf.constant(length, tf.int64)]))
    dense = tf.sparse.to_dense(x, default_value=MISSING_ID)
    return tf.reshape(dense, [-1, length])


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """Featurize raw examples; see the module docstring for the output contract."""
    config = Config.from_json(custom_config[CONFIG_KEY])
    feats = config.features
    outputs: dict[str, tf.Tensor] = {}

    # One vocabulary per `vocabulary` name, computed over all features that share it.
    by_vocab: dict[str, list[str]] = {}
    for f in feats.ids:
        by_vocab.setdefault(f.vocabulary, []).append(f.name)
    spec = {f.name: f for f in feats.ids}
    for vocab, names in by_vocab.items():
        tokens = tf.concat([_values(inputs[n]) for n in names], axis=0)
        top_k = max(spec[n].max_tokens for n in names)
        deferred = tft.vocabulary(tokens, top_k=top_k, vocab_filename=vocab)
        for name in names:
            f = spec[name]
            if f.multivalent:
                x = inputs[name]
                if not isinstance(x, tf.SparseTensor):
                    x = tf.sparse.from_dense(tf.reshape(x, [tf.shape(x)[0], -1]))
                ids = tft.apply_vocabulary(x, deferred, num_oov_buckets=f.oov_buckets)
                outputs[name] = _padded(ids, f.max_length)
            else:
                outputs[name] = tft.apply_vocabulary(
                    _dense(inputs[name], b""), deferred, num_oov_buckets=f.oov_buckets)

    for name in feats.numeric:
        x = tf.cast(_dense(inputs[name], 0.0), tf.float32)
        if name in feats.log1p_numeric:
            x = tf.math.log1p(tf.maximum(x, 0.0))
        outputs[name] = tft.scale_to_z_score(x)

    if feats.position:
        position = tf.cast(_dense(inputs[feats.position], MISSING_ID), tf.int64)
        outputs[feats.position] = tf.where(position < 0, tf.constant(MISSING_ID, tf.int64),
                                           tf.minimum(position, feats.max_position - 1))

    for key in config.label_keys:
        outputs[key] = tf.cast(_dense(inputs[key], 0), tf.float32)
    return outputs
