"""tf.Transform `preprocessing_fn`: the featurization that runs in training and in serving.

What it produces (the model's input contract):
- every id feature: int64 [B] index into its vocabulary (shared by features with the same
  `vocabulary`, e.g. query video, candidate video and watch history), with OOV buckets;
- multivalent id features: int64 [B, max_length], padded with -1;
- numeric features: float32 [B], log1p first where configured, then z-scored;
- numeric features listed in features.numeric_embeddings, in addition: `<name>_buckets`, int64
  [B] quantile-bin index in [0, buckets), or `<name>_piecewise_linear`, float32 [B, buckets]
  piecewise-linear encoding over the quantile bins (both on the value after log1p);
- position: int64 [B], -1 where missing, clipped to max_position - 1 (no output when
  features.position is empty: data without positions, such as a table);
- labels and presence indicators: float32 [B], passed through.

Position and labels are outputs of their own, so when serving omits them the
Transform graph prunes exactly those outputs and nothing else.
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import NumericEmbedding, TransformView
from watchnext.core.contract import CONFIG_KEY
from watchnext.models.features import MISSING_ID

import tensorflow as tf
import tensorflow_transform as tft

# Rank error of tft.quantiles' approximate quantiles (a fraction of the rows): well under one
# bin's share (1/buckets) for any sensible bin count, and cheap in memory at this size.
QUANTILE_EPSILON = 0.001


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


def piecewise_linear(x: tf.Tensor, edges: tf.Tensor) -> tf.Tensor:
    """Piecewise-linear encoding of x [B] over the bins [edges_t, edges_t+1), edges [T + 1] sorted.

    e_t = clip((x - edges_t) / (edges_t+1 - edges_t), 0, 1): 1 for every bin wholly below x,
    the fraction of its own bin x has covered, 0 above (Gorishniy et al., 2022, eq. 2, clipped
    at the outer edges so serving values beyond the training range saturate). A bin of zero
    width (quantiles that coincide, e.g. a column that is mostly 0) is the step [x >= edge].
    Returns float32 [B, T].
    """
    lower, upper = edges[tf.newaxis, :-1], edges[tf.newaxis, 1:]
    width = upper - lower
    x = x[:, tf.newaxis]
    ramp = tf.clip_by_value((x - lower) / tf.where(width > 0, width, tf.ones_like(width)), 0.0, 1.0)
    step = tf.cast(x >= upper, tf.float32)
    return tf.where(width > 0, ramp, step)


def _quantile_encoding(x: tf.Tensor, spec: NumericEmbedding) -> tf.Tensor:
    """x's quantile bin (int64 [B]) or its piecewise-linear encoding (float32 [B, buckets]).

    tft.quantiles gives the buckets - 1 inner boundaries, computed over the whole training
    split by the analyzer and stored in the Transform graph as constants.
    """
    boundaries = tft.quantiles(x, num_buckets=spec.buckets, epsilon=QUANTILE_EPSILON)  # [1, buckets - 1]
    if spec.encoding == "buckets":
        return tft.apply_buckets(x, boundaries)
    inner = tf.reshape(boundaries, [spec.buckets - 1])
    edges = tf.concat([tf.reshape(tft.min(x), [1]), inner, tf.reshape(tft.max(x), [1])], axis=0)
    return tf.reshape(piecewise_linear(x, edges), [-1, spec.buckets])


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """Featurize raw examples; see the module docstring for the output contract."""
    config = TransformView.from_json(custom_config[CONFIG_KEY])
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

    embedded = {e.name: e for e in feats.numeric_embeddings}
    for name in feats.numeric:
        x = tf.cast(_dense(inputs[name], 0.0), tf.float32)
        if name in feats.log1p_numeric:
            x = tf.math.log1p(tf.maximum(x, 0.0))
        outputs[name] = tft.scale_to_z_score(x)
        if name in embedded:
            outputs[embedded[name].output_key] = _quantile_encoding(x, embedded[name])

    if feats.position:
        position = tf.cast(_dense(inputs[feats.position], MISSING_ID), tf.int64)
        outputs[feats.position] = tf.where(position < 0, tf.constant(MISSING_ID, tf.int64),
                                           tf.minimum(position, feats.max_position - 1))

    for key in config.label_keys:
        outputs[key] = tf.cast(_dense(inputs[key], 0), tf.float32)
    return outputs
