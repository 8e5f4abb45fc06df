"""`FeatureEncoder`: the transformed features as one dense vector, with one embedding table per vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, IdFeature, from_dict
from watchnext.models.layers.tensors import as_batch_vector, drop_position, no_autograph

import tensorflow as tf
import tf_keras


def id_input_dim(feature: IdFeature, vocab_sizes: Mapping[str, int]) -> int:
    """Rows of the feature's embedding table: the vocabulary plus its OOV buckets."""
    if feature.vocabulary not in vocab_sizes:
        raise KeyError(
            f"vocab_sizes has no entry for vocabulary {feature.vocabulary!r} (feature {feature.name!r}, "
            f"config key features.ids); it has {sorted(vocab_sizes)}. Pass the sizes Transform computed."
        )
    return int(vocab_sizes[feature.vocabulary]) + int(feature.oov_buckets)


def device_feature(config: Config) -> IdFeature:
    """The IdFeature named by `config.features.device` (the shallow tower's device input)."""
    for f in config.features.ids:
        if f.name == config.features.device:
            return f
    raise KeyError(f"config key features.device: {config.features.device!r} is not one of features.ids")


class FeatureEncoder(tf_keras.layers.Layer):
    """Transformed features → one dense vector x = [e(id_1); …; pool(e(ids_m)); numeric; (e(position))].

    Each vocabulary has one embedding table, shared by the features that use it (query
    video, candidate video and watch history are all videos, so their vectors live in one
    space and learn from each other's data). A multivalent feature is the mean of its
    non-padding (≥ 0) ids' embeddings, the zero vector when it has none. Numeric features
    are appended as they are (Transform already z-scored them). A numeric feature listed in
    `features.numeric_embeddings` adds its quantile encoding: e(bin) from a `buckets`-row table,
    or ReLU(W · ple + b) of its piecewise-linear encoding (Gorishniy et al., 2022), and its
    z-scored value only with `keep_value`.

    With `position_mode == "input_feature"` the position is embedded too, with row 0 for
    "missing" (the paper's weaker baseline). Training drops it to missing with
    `position_dropout` so the missing row that serving uses has been trained.
    """

    def __init__(self, config: Config, vocab_sizes: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.vocab_sizes = {k: int(v) for k, v in vocab_sizes.items()}
        feats = config.features
        self.tables: dict[str, tf_keras.layers.Embedding] = {}
        shapes: dict[str, tuple[int, int, str]] = {}
        for f in feats.ids:
            shape = (id_input_dim(f, self.vocab_sizes), f.embedding_dim)
            if f.vocabulary in shapes and shapes[f.vocabulary][:2] != shape:
                other = shapes[f.vocabulary][2]
                raise ValueError(
                    f"config key features.ids: {f.name!r} and {other!r} share vocabulary {f.vocabulary!r} "
                    f"but differ in embedding_dim or oov_buckets ({shape} vs {shapes[f.vocabulary][:2]}); "
                    "features that share a vocabulary share one embedding table, so make them equal"
                )
            if f.vocabulary not in shapes:
                shapes[f.vocabulary] = (*shape, f.name)
                self.tables[f.vocabulary] = tf_keras.layers.Embedding(
                    shape[0], shape[1], name=f"{f.vocabulary}_embedding")
        # One small layer per embedded numeric feature (the bins' boundaries are in Transform).
        self.numeric_encoders: dict[str, tf_keras.layers.Layer] = {}
        for e in feats.numeric_embeddings:
            self.numeric_encoders[e.name] = (
                tf_keras.layers.Embedding(e.buckets, e.embedding_dim, name=f"{e.output_key}_embedding")
                if e.encoding == "buckets" else
                tf_keras.layers.Dense(e.embedding_dim, activation="relu", name=f"{e.output_key}_dense"))
        self.use_position = config.model.position_mode == "input_feature"
        self.position_embedding = (
            tf_keras.layers.Embedding(feats.max_position + 1, config.model.position_embedding_dim,
                                      name="position_embedding") if self.use_position else None
        )

    @property
    def output_dim(self) -> int:
        """Width of x."""
        feats = self.config.features
        dropped = sum(1 for e in feats.numeric_embeddings if not e.keep_value)
        dim = sum(f.embedding_dim for f in feats.ids) + len(feats.numeric) - dropped
        dim += sum(e.embedding_dim for e in feats.numeric_embeddings)
        return dim + (self.config.model.position_embedding_dim if self.use_position else 0)

    @no_autograph
    def call(self, features: Mapping[str, tf.Tensor], training: Any = None) -> tf.Tensor:
        feats = self.config.features
        parts = []
        for f in feats.ids:
            table = self.tables[f.vocabulary]
            ids = tf.cast(_feature(features, f.name, "features.ids"), tf.int64)
            if f.multivalent:
                parts.append(_mean_pool(table, ids))
            else:
                parts.append(table(as_batch_vector(ids)))
        embedded = {e.name: e for e in feats.numeric_embeddings}
        for name in feats.numeric:
            spec = embedded.get(name)
            if spec is None or spec.keep_value:
                value = _feature(features, name, "features.numeric")
                parts.append(tf.reshape(tf.cast(value, tf.float32), [-1, 1]))
            if spec is not None:
                encoded = _feature(features, spec.output_key, "features.numeric_embeddings")
                if spec.encoding == "buckets":
                    bucket = as_batch_vector(tf.cast(encoded, tf.int64))
                    parts.append(self.numeric_encoders[name](tf.clip_by_value(bucket, 0, spec.buckets - 1)))
                else:
                    parts.append(self.numeric_encoders[name](
                        tf.reshape(tf.cast(encoded, tf.float32), [-1, spec.buckets])))
        if self.position_embedding is not None:
            position = _position_or_missing(features, feats.position, parts[0])
            position = drop_position(position, self.config.model.position_dropout, training)
            row = tf.clip_by_value(position, -1, feats.max_position - 1) + 1  # 0 = missing
            parts.append(self.position_embedding(row))
        return tf.concat(parts, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.config.to_dict(),
                "vocab_sizes": dict(self.vocab_sizes)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> FeatureEncoder:
        cfg = dict(cfg)
        config = from_dict(cfg.pop("config"), source="FeatureEncoder.get_config")
        return cls(config, cfg.pop("vocab_sizes"), **cfg)


def _feature(features: Mapping[str, tf.Tensor], name: str, config_key: str) -> tf.Tensor:
    if name not in features:
        raise KeyError(f"the features have no {name!r} (config key {config_key}); got {sorted(features)}")
    return features[name]


def _mean_pool(table: tf_keras.layers.Embedding, ids: tf.Tensor) -> tf.Tensor:
    """Mean of the embeddings of the non-negative ids in each row of [B, L]; zeros for an empty row."""
    present = tf.cast(ids >= 0, tf.float32)  # [B, L]
    vectors = table(tf.maximum(ids, 0)) * present[..., tf.newaxis]  # [B, L, D]
    count = tf.reduce_sum(present, axis=1, keepdims=True)  # [B, 1]
    return tf.reduce_sum(vectors, axis=1) / tf.maximum(count, 1.0)


def _position_or_missing(features: Mapping[str, tf.Tensor], key: str, like: tf.Tensor) -> tf.Tensor:
    """features[key] as int64 [B], or all -1 (missing) when the key is absent (serving)."""
    if key in features:
        return tf.cast(as_batch_vector(features[key]), tf.int64)
    return -tf.ones(tf.shape(like)[:1], tf.int64)
