"""`MLP`, the dense stack experts, towers and the shallow tower are made of, and its costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.tensors import no_autograph

import tensorflow as tf
import tf_keras


def mlp_multiplications(input_dim: int, units: Sequence[int]) -> int:
    """Multiply-adds per example of a dense stack of `units` on an input of width `input_dim`."""
    total, d = 0, input_dim
    for u in units:
        total += d * u
        d = u
    return total


def mlp_output_dim(input_dim: int, units: Sequence[int]) -> int:
    """Width of a dense stack's output: its last layer's units, or the input's with no layers."""
    return units[-1] if units else input_dim


class MLP(tf_keras.layers.Layer):
    """A stack of dense layers: h_0 = x, h_{i+1} = act(W_i h_i + b_i).

    Experts, towers and the shallow tower are all MLPs; with no `units` it is the
    identity, which lets a config turn a stage off (e.g. `tower_units: []`).
    """

    def __init__(self, units: Sequence[int], activation: str = "relu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.activation = activation
        self.dense_layers = [
            tf_keras.layers.Dense(u, activation=activation, name=f"dense_{i}")
            for i, u in enumerate(self.units)
        ]

    @no_autograph
    def call(self, x: tf.Tensor) -> tf.Tensor:
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def output_dim(self, input_dim: int) -> int:
        """Width of the output for an input of width `input_dim`."""
        return mlp_output_dim(input_dim, self.units)

    def multiplications(self, input_dim: int) -> int:
        """Multiply-adds per example: Σ_i d_i · d_{i+1}."""
        return mlp_multiplications(input_dim, self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": list(self.units), "activation": self.activation}
