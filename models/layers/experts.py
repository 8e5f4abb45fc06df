"""`FusedExperts`: a level's experts computed together, one batched matmul per dense layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.dense import mlp_multiplications, mlp_output_dim
from watchnext.models.layers.tensors import no_autograph

import numpy as np
import tensorflow as tf
import tf_keras


class FusedExperts(tf_keras.layers.Layer):
    """n experts with the same dense stack, their weights stacked in one variable per layer.

    Layer i holds kernel_i ∈ R^{n × d_i × d_{i+1}} and bias_i ∈ R^{n × d_{i+1}}; expert e is the
    MLP whose layer i is (kernel_i[e], bias_i[e]):
        h_0 = x for every expert (x: [B, d_0]) or x_e (x: [B, n, d_0], one input per expert),
        h_{i+1}[b, e] = act(h_i[b, e] · kernel_i[e] + bias_i[e]),
    returned as [B, n, d_L]. It computes exactly what n separate `MLP`s compute (see
    `stack_expert_weights`). On a shared input each expert is a chain of fused matmuls on its
    slice of the stacked weights (`_shared_input`); with one input per expert (PLE's upper
    levels) each layer is one einsum over all experts. Each expert's kernel starts as
    a Dense kernel would (Glorot-uniform over its own d_i × d_{i+1}), its bias at 0. With no
    `units` it is the identity: every expert passes its input through.
    """

    def __init__(self, num_experts: int, units: Sequence[int], activation: str = "relu",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_experts = int(num_experts)
        self.units = tuple(int(u) for u in units)
        self.activation = activation
        self._activation = tf_keras.activations.get(activation)
        self.kernels: list[tf.Variable] = []
        self.biases: list[tf.Variable] = []

    def build(self, input_shape: Any) -> None:
        d = int(tf.TensorShape(input_shape)[-1])
        for i, u in enumerate(self.units):
            fan = (d, u)  # per expert, as a Dense layer's kernel: not the stacked [n, d, u] shape

            def per_expert(shape: Any, dtype: Any = None, fan: tuple[int, int] = fan) -> tf.Tensor:
                # A new initializer per expert: an unseeded one repeats its first draw.
                return tf.stack([tf_keras.initializers.GlorotUniform()(fan, dtype=dtype)
                                 for _ in range(shape[0])])

            self.kernels.append(self.add_weight(f"kernel_{i}", shape=(self.num_experts, d, u),
                                                initializer=per_expert))
            self.biases.append(self.add_weight(f"bias_{i}", shape=(self.num_experts, u), initializer="zeros"))
            d = u
        super().build(input_shape)

    @no_autograph
    def call(self, x: tf.Tensor) -> tf.Tensor:
        h = x
        if h.shape.rank == 2 and not self.units:
            return tf.stack([h] * self.num_experts, axis=1)
        if h.shape.rank == 2:
            return self._shared_input(h)
        for kernel, bias in zip(self.kernels, self.biases, strict=True):
            h = self._activation(tf.einsum("bnd,nde->bne", h, kernel) + bias)
        return h

    def _shared_input(self, x: tf.Tensor) -> tf.Tensor:
        """The experts on one input x [B, d_0] that they all read (MMoE, OMoE, PLE's first level).

        Each expert is its own chain of plain matmuls on its slice of the stacked weights
        (`tf.unstack`), each followed by `tf.nn.bias_add` and the activation, which CPU kernels
        fuse into one op (matmul + bias + ReLU forward, BiasAddGrad backward); the n results are
        stacked at the end. Same arithmetic as the einsum over the stacked kernels
        ("bd,nde->bne", then "bnd,nde->bne"). Measured against two other forms of the same
        arithmetic with census-sized experts (3 × [256, 128], batches 256 and 1024, interleaved
        rounds beside DeepCTR's MMOE; bench/deepctr_peer.py): the einsum's batched matmuls and
        their transposes cost 5-10% of a training step, and computing layer 0 of all experts as
        one matmul on the kernels laid side by side ([d_0, n · d_1]) cost ~10% more than this
        form, in the transpose that lays them out and in a `+ bias` that does not fuse.
        """
        per_layer = [(tf.unstack(kernel), tf.unstack(bias)) for kernel, bias in zip(self.kernels, self.biases,
                                                                                     strict=True)]
        outputs = []
        for e in range(self.num_experts):
            h = x
            for kernels, biases in per_layer:
                h = self._activation(tf.nn.bias_add(tf.matmul(h, kernels[e]), biases[e]))
            outputs.append(h)
        return tf.stack(outputs, axis=1)

    def output_dim(self, input_dim: int) -> int:
        return mlp_output_dim(input_dim, self.units)

    def multiplications(self, input_dim: int) -> int:
        """Multiply-adds per example, all experts: n · Σ_i d_i · d_{i+1}."""
        return self.num_experts * mlp_multiplications(input_dim, self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_experts": self.num_experts, "units": list(self.units),
                "activation": self.activation}


def stack_expert_weights(per_expert: Sequence[Sequence[Any]]) -> list[Any]:
    """n `MLP`s' weights → the `FusedExperts` weights that compute the same experts.

    `per_expert[e]` is expert e's MLP.get_weights(), [kernel_0, bias_0, kernel_1, ...];
    the result is FusedExperts.get_weights(), [kernel_0, bias_0, ...] with expert e's
    matrices at index e of each. (models/warm_start.py does the same by variable name.)
    """
    if not per_expert:
        raise ValueError("stack_expert_weights needs at least one expert")
    lengths = {len(w) for w in per_expert}
    if len(lengths) != 1:
        raise ValueError(f"the experts have different numbers of weights: {sorted(lengths)}")
    return [np.stack([np.asarray(w[j]) for w in per_expert]) for j in range(lengths.pop())]


