"""Progressive Layered Extraction (Tang et al., RecSys 2020): `ExtractionLevel`, `PLE`, and `CGC`,
which is PLE with one level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.dense import mlp_multiplications, mlp_output_dim
from watchnext.models.layers.experts import FusedExperts
from watchnext.models.layers.gates import ExpertGate, mix
from watchnext.models.layers.mixing import MixingLayer, MixingOutput
from watchnext.models.layers.tensors import no_autograph

import tensorflow as tf
import tf_keras


class ExtractionLevel(tf_keras.layers.Layer):
    """One level of Progressive Layered Extraction (Tang et al., RecSys 2020).

    Task k owns `task_experts` experts E_k; `shared_experts` experts S are common. Task
    k's gate mixes its own and the shared experts, both reading the level's inputs:
        y_k = Σ_{e ∈ E_k ∪ S} g_k(x_k)_e · e(input of e),
    where task experts read x_k and shared experts read x_s. Below the top level a
    shared gate over all experts, y_s = Σ_{e ∈ ∪E_k ∪ S} g_s(x_s)_e · e(·), feeds the
    next level's shared experts. Owning experts keeps one task's gradient from
    crowding out another's (the "seesaw" CGC was built against).
    """

    def __init__(self, task_names: Sequence[str], task_experts: int, shared_experts: int,
                 expert_units: Sequence[int], gate_dropout: float = 0.0, shared_gate: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)
        self.task_experts = int(task_experts)
        self.shared_experts = int(shared_experts)
        self.expert_units = tuple(expert_units)
        self.gate_dropout = float(gate_dropout)
        self.shared_gate = bool(shared_gate)
        # One FusedExperts per group of experts that read the same input: each task's own, the shared.
        self.experts_of_task = [FusedExperts(self.task_experts, self.expert_units, name=f"experts_{t}")
                                for t in self.task_names]
        self.common_experts = (FusedExperts(self.shared_experts, self.expert_units, name="experts_shared")
                               if self.shared_experts else None)
        seen_by_task = self.task_experts + self.shared_experts
        self.task_gates = [ExpertGate(seen_by_task, self.gate_dropout, name=f"gate_{t}")
                           for t in self.task_names]
        self.common_gate = (
            ExpertGate(len(self.task_names) * self.task_experts + self.shared_experts,
                       self.gate_dropout, name="gate_shared") if self.shared_gate else None
        )

    @no_autograph
    def call(self, inputs: Sequence[tf.Tensor], training: Any = None
             ) -> tuple[list[tf.Tensor], tf.Tensor | None, dict[str, tf.Tensor]]:
        """`inputs`: K task inputs, then the shared input.

        Returns (task outputs, the shared mixture or None without a shared gate, task gates).
        """
        *task_x, shared_x = inputs
        shared_out = [self.common_experts(shared_x)] if self.common_experts is not None else []
        task_outputs, gates, all_out = [], {}, []
        for task, x_k, experts, gate_layer in zip(self.task_names, task_x, self.experts_of_task,
                                                  self.task_gates, strict=True):
            own_out = [experts(x_k)] if self.task_experts else []  # [B, task_experts, d]
            all_out += own_out
            g = gate_layer(x_k, training=training)
            gates[task] = g
            task_outputs.append(mix(g, tf.concat(own_out + shared_out, axis=1)))
        shared_mixed = None
        if self.common_gate is not None:
            shared_mixed = mix(self.common_gate(shared_x, training=training),
                                tf.concat(all_out + shared_out, axis=1))
        return task_outputs, shared_mixed, gates

    def output_dim(self, input_dim: int) -> int:
        return mlp_output_dim(input_dim, self.expert_units)

    def multiplications(self, input_dim: int) -> int:
        d = self.output_dim(input_dim)
        n_experts = len(self.task_names) * self.task_experts + self.shared_experts
        total = n_experts * mlp_multiplications(input_dim, self.expert_units)
        seen = self.task_experts + self.shared_experts
        total += len(self.task_names) * (input_dim * seen + seen * d)
        if self.shared_gate:
            total += input_dim * n_experts + n_experts * d
        return total

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names),
                "task_experts": self.task_experts, "shared_experts": self.shared_experts,
                "expert_units": list(self.expert_units), "gate_dropout": self.gate_dropout,
                "shared_gate": self.shared_gate}


class PLE(MixingLayer):
    """Progressive Layered Extraction: `levels` stacked `ExtractionLevel`s.

    Level 1 reads x for every task and for the shared experts; level l+1's task-k experts
    read level l's y_k and its shared experts read level l's shared mixture y_s. Only
    levels below the top have the shared gate (nothing reads y_s above the top). The
    gate dict holds the top level's task gates, the ones whose mixtures the towers read.
    """

    config_fields = ("task_experts", "shared_experts", "expert_units", "levels", "gate_dropout")

    def __init__(self, task_names: Sequence[str], task_experts: int, shared_experts: int,
                 expert_units: Sequence[int], levels: int, gate_dropout: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(task_names, **kwargs)
        if levels < 1:
            raise ValueError(f"PLE needs at least one level, got levels={levels}")
        self.levels = int(levels)
        self.extraction_levels = [
            ExtractionLevel(self.task_names, task_experts, shared_experts, expert_units, gate_dropout,
                            shared_gate=(i < self.levels - 1), name=f"level_{i}")
            for i in range(self.levels)
        ]
        # The levels' common settings, as the config states them (get_config returns these).
        top = self.extraction_levels[-1]
        self.task_experts, self.shared_experts = top.task_experts, top.shared_experts
        self.expert_units, self.gate_dropout = top.expert_units, top.gate_dropout

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        task_x, shared_x = [x] * len(self.task_names), x
        gates: dict[str, tf.Tensor] = {}
        for level in self.extraction_levels:
            # Only the top level returns no shared mixture, and nothing reads it after the loop.
            task_x, shared_x, gates = level([*task_x, shared_x], training=training)
        return task_x, gates

    def output_dim(self, input_dim: int) -> int:
        return mlp_output_dim(input_dim, self.expert_units)

    def multiplications(self, input_dim: int) -> int:
        total, d = 0, input_dim
        for level in self.extraction_levels:
            total += level.multiplications(d)
            d = level.output_dim(d)
        return total


class CGC(PLE):
    """Customized Gate Control: PLE with a single level, so no shared gate.

    Task k: y_k = Σ_{e ∈ E_k ∪ S} g_k(x)_e · e(x), with g_k over its own experts E_k then the
    shared experts S (in that order in the gate dict's columns).
    """

    config_fields = ("task_experts", "shared_experts", "expert_units", "gate_dropout")

    def __init__(self, task_names: Sequence[str], task_experts: int, shared_experts: int,
                 expert_units: Sequence[int], gate_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(task_names, task_experts, shared_experts, expert_units, 1, gate_dropout, **kwargs)

    @property
    def level(self) -> ExtractionLevel:
        """The one extraction level."""
        return self.extraction_levels[0]
