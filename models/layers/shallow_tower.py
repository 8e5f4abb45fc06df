"""`ShallowTower`: the paper's selection-bias tower on position and device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.dense import MLP
from watchnext.models.layers.tensors import as_batch_vector, drop_position, no_autograph

import tensorflow as tf
import tf_keras

BIAS_FORMS = ("logit", "log_examination")


class ShallowTower(tf_keras.layers.Layer):
    """Selection-bias tower: b(position, device) added to the logits of position-biased heads.

    Users click higher slots more whatever the video; the paper learns this with a small
    tower on position and device so the main towers learn relevance. Inputs are crossed
    (a device changes how steep the position effect is):
        b = w · MLP([e_pos(p); e_dev(d); e_cross(p · n_devices + d)]) + c,   b = 0 if p is missing.
    At serving the position is unknown (missing) and b is exactly 0, so the served logits
    are the debiased ones. The separate position and device embeddings carry the main
    effects for rare (position, device) crosses.

    In training each example's position is made missing with probability
    `position_dropout` (10% in the paper) so the model does not lean on position alone.
    Positions ≥ max_position are clipped to max_position - 1; negative means missing.

    With `form="log_examination"` the output is log P(examined) = log sigmoid(b) ≤ 0 instead
    (still 0 when the position is missing: an unknown slot is scored as examined), for
    `apply_position_bias` to multiply into the heads' probabilities.
    """

    def __init__(self, max_position: int, num_devices: int, embedding_dim: int, units: Sequence[int],
                 position_dropout: float = 0.0, form: str = "logit", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= position_dropout < 1.0:
            raise ValueError(f"ShallowTower position_dropout must be in [0, 1), got {position_dropout}")
        if form not in BIAS_FORMS:
            raise ValueError(f"ShallowTower form must be one of {BIAS_FORMS}, got {form!r}")
        self.form = form
        self.max_position = int(max_position)
        self.num_devices = int(num_devices)
        self.embedding_dim = int(embedding_dim)
        self.units = tuple(units)
        self.position_dropout = float(position_dropout)
        self.position_embedding = tf_keras.layers.Embedding(self.max_position, self.embedding_dim,
                                                            name="position_embedding")
        self.device_embedding = tf_keras.layers.Embedding(self.num_devices, self.embedding_dim,
                                                          name="device_embedding")
        self.cross_embedding = tf_keras.layers.Embedding(self.max_position * self.num_devices,
                                                         self.embedding_dim, name="cross_embedding")
        self.hidden = MLP(self.units, name="hidden")
        self.out = tf_keras.layers.Dense(1, name="out")

    @no_autograph
    def call(self, position: tf.Tensor, device: tf.Tensor, training: Any = None) -> tf.Tensor:
        position = drop_position(position, self.position_dropout, training)
        position = tf.minimum(position, self.max_position - 1)
        missing = position < 0
        p = tf.maximum(position, 0)  # any row id; the result is masked below
        d = tf.cast(as_batch_vector(device), p.dtype)
        x = tf.concat([self.position_embedding(p), self.device_embedding(d),
                       self.cross_embedding(p * self.num_devices + d)], axis=-1)
        bias = tf.squeeze(self.out(self.hidden(x)), axis=-1)
        if self.form == "log_examination":
            bias = tf.math.log_sigmoid(bias)
        return tf.where(missing, tf.zeros_like(bias), bias)

    def multiplications(self, input_dim: int = 0) -> int:
        d = 3 * self.embedding_dim
        return self.hidden.multiplications(d) + self.hidden.output_dim(d)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_position": self.max_position, "num_devices": self.num_devices,
                "embedding_dim": self.embedding_dim, "units": list(self.units),
                "position_dropout": self.position_dropout, "form": self.form}


def _log1mexp(x: tf.Tensor) -> tf.Tensor:
    """log(1 - exp(x)) for x < 0, accurate at both ends (Mächler, 2012)."""
    return tf.where(x > -0.6931472, tf.math.log(-tf.math.expm1(x)), tf.math.log1p(-tf.exp(x)))


def apply_position_bias(output: tf.Tensor, bias: tf.Tensor, form: str, binary: bool) -> tf.Tensor:
    """A position-biased head's logit (or regression value) with the shallow tower's `bias` in.

    "logit" (the paper): output + b. "log_examination", `bias` = log e: a binary head's
    probability becomes e · sigmoid(output), returned as its logit, log p − log(1 − p), so the
    cross-entropy on it is exactly the product model's; any other head adds log e (for a
    weighted-logistic head exp(logit) is the expectation, so this multiplies it by e).
    Where log e is exactly 0 (position missing) a binary head's logit is `output` itself, as
    at serving, not its round trip through log space.
    """
    if form == "logit" or not binary:
        return output + bias
    # log p ≤ −1e-6: p = 1 would make the logit infinite.
    log_p = tf.minimum(tf.math.log_sigmoid(output) + bias, -1e-6)
    return tf.where(tf.equal(bias, 0.0), output, log_p - _log1mexp(log_p))
