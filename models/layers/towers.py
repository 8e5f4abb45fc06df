"""`Tower`: a task's head on its mixture, one logit (or value) per example."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.dense import MLP
from watchnext.models.layers.tensors import no_autograph

import tensorflow as tf
import tf_keras


class Tower(tf_keras.layers.Layer):
    """A task's tower: y_k = w_k · MLP_k(f_k(x)) + b_k, one logit (or value) per example, shape [B]."""

    def __init__(self, units: Sequence[int], output_bias: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = tuple(units)
        # b_k's starting value: the label's prior (see training.prior_bias_batches), so the
        # first steps need not shift every logit, which can kill the tower's ReLUs.
        self.output_bias = float(output_bias)
        self.hidden = MLP(self.units, name="hidden")
        self.out = tf_keras.layers.Dense(
            1, bias_initializer=tf_keras.initializers.Constant(self.output_bias), name="out")

    @no_autograph
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.squeeze(self.out(self.hidden(x)), axis=-1)

    def multiplications(self, input_dim: int) -> int:
        return self.hidden.multiplications(input_dim) + self.hidden.output_dim(input_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": list(self.units), "output_bias": self.output_bias}
