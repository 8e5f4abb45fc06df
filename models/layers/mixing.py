"""The one interface of the mixing layers: shared hidden layer output → one input per task.

Every mixing layer (MMoE, OMoE, SharedBottom, SingleTask, CGC, PLE) is called as
`layer(x, training) -> (task_inputs, gates)`: a list with one [B, d] tensor per task
(config head order) and a dict, keyed by task name, of the [B, n] softmax weights of the
gate that task reads (a constant [B, 1] of ones for the gateless shared_bottom and
single_task, whose tasks each read one MLP). The model never needs to know which
architecture it holds. Each also reports `output_dim(input_dim)` (d) and
`multiplications(input_dim)`, the multiply-adds it spends per example, so that
`models.model.multiplications_per_example` can compare architectures the way the
paper's Table 2 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

import tensorflow as tf
import tf_keras

# What every mixing layer returns: per-task inputs and per-task gate weights.
MixingOutput = tuple[list[tf.Tensor], dict[str, tf.Tensor]]


class MixingLayer(tf_keras.layers.Layer):
    """Base of the mixing layers: holds the task names and writes `get_config` once.

    A subclass names its other constructor arguments in `config_fields` (stored as
    attributes of the same name; sequences as tuples) and implements `call`,
    `output_dim` and `multiplications`.
    """

    # Constructor arguments after `task_names` that get_config returns (and from_config passes back).
    config_fields: tuple[str, ...] = ()

    def __init__(self, task_names: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)

    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        raise NotImplementedError

    def output_dim(self, input_dim: int) -> int:
        """Width d of each task input for a shared hidden output of width `input_dim`."""
        raise NotImplementedError

    def multiplications(self, input_dim: int) -> int:
        """Multiply-adds per example: experts' dense layers, gates (d_in · n) and mixtures (n · d)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in ("task_names", *self.config_fields)}
        return {**super().get_config(),
                **{name: list(v) if isinstance(v, tuple) else v for name, v in fields.items()}}
