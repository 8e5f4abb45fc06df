"""Small graph helpers the layers share: tracing without AutoGraph, `training` flags, [B] vectors,
position dropout."""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

import tensorflow as tf


def no_autograph(method: Any) -> Any:
    """Mark a layer method as plain graph code that AutoGraph need not convert.

    The layers' Python control flow depends only on configuration, never on tensor
    values, so AutoGraph has nothing to convert, yet it re-parses the source of every
    method it meets: on 2 CPU cores that was most of the ~35 s the first train step took
    to trace. make_decorator keeps the method's signature visible to Keras, which
    inspects `call` for its `training` argument.
    """
    return tf.__internal__.decorator.make_decorator(method, tf.autograph.experimental.do_not_convert(method))


def smart_training(training: Any, when_training: Any, otherwise: Any) -> tf.Tensor:
    """`when_training()` if `training` (a bool, None or a bool tensor) is true, else `otherwise()`.

    Keras passes `training` as a Python bool in `fit`, but as None when nobody set it
    (inference), and tracing code may hand over a tensor; smart_cond handles all three
    without adding a tf.cond when the value is known while tracing.
    """
    if training is None:
        return otherwise()
    return tf.__internal__.smart_cond.smart_cond(training, when_training, otherwise)


def as_batch_vector(x: Any) -> tf.Tensor:
    """A per-example scalar feature as [B], whether it comes as [B] or [B, 1]."""
    x = tf.convert_to_tensor(x)
    return x if x.shape.rank == 1 else tf.reshape(x, [-1])


def drop_position(position: tf.Tensor, rate: float, training: Any) -> tf.Tensor:
    """Position as int64 [B]; in training each entry becomes -1 (missing) with probability `rate`."""
    position = tf.cast(as_batch_vector(position), tf.int64)
    if rate == 0.0:
        return position

    def dropped() -> tf.Tensor:
        drop = tf.random.uniform(tf.shape(position)) < rate
        return tf.where(drop, tf.constant(-1, tf.int64), position)

    return smart_training(training, dropped, lambda: position)
