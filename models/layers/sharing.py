"""Gateless sharing: `SharedBottom` (one MLP for all tasks) and `SingleTask` (one MLP per task)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.dense import MLP
from watchnext.models.layers.gates import single_expert_gate
from watchnext.models.layers.mixing import MixingLayer, MixingOutput
from watchnext.models.layers.tensors import no_autograph

import tensorflow as tf


class MLPSharing(MixingLayer):
    """Tasks that each read one MLP h(x) of `units`, either one MLP for all or one per task.

    The gate dict holds each task's trivial one-expert gate (ones, [B, 1]). The subclasses
    differ only in `mlp_names`: one name (shared by every task) or one per task.
    """

    config_fields = ("units",)

    def __init__(self, task_names: Sequence[str], units: Sequence[int], **kwargs: Any) -> None:
        super().__init__(task_names, **kwargs)
        self.units = tuple(units)
        self.mlps = [MLP(self.units, name=name) for name in self.mlp_names()]

    def mlp_names(self) -> list[str]:
        """The MLPs' layer names: one, or one per task (in task order)."""
        raise NotImplementedError

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        hidden = [mlp(x) for mlp in self.mlps]
        # One MLP: every task reads it; one per task: task k reads the k-th.
        task_inputs = hidden * (len(self.task_names) // len(hidden))
        return task_inputs, {task: single_expert_gate(h)
                             for task, h in zip(self.task_names, task_inputs, strict=True)}

    def output_dim(self, input_dim: int) -> int:
        return self.mlps[0].output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        return len(self.mlps) * self.mlps[0].multiplications(input_dim)


class SharedBottom(MLPSharing):
    """Hard parameter sharing: one MLP h(x) feeds every task's tower (no experts, no gates)."""

    def mlp_names(self) -> list[str]:
        return ["bottom"]


class SingleTask(MLPSharing):
    """No sharing above the shared hidden layer: task k reads its own MLP h_k(x)."""

    def mlp_names(self) -> list[str]:
        return [f"mlp_{t}" for t in self.task_names]
