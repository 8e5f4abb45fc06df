"""Mixtures of experts: `MMoE` (a gate per task, the paper's choice) and `OMoE` (one gate for all)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.layers.experts import FusedExperts
from watchnext.models.layers.gates import ExpertGate, mix
from watchnext.models.layers.mixing import MixingLayer, MixingOutput
from watchnext.models.layers.tensors import no_autograph

import tensorflow as tf


class ExpertMixture(MixingLayer):
    """n experts shared by all tasks, read through softmax gates: f(x) = Σ_i g(x)_i · expert_i(x).

    The subclasses differ only in how many gates there are (`gate_names`) and which task
    reads which; the experts, the costs and the config are written here once.
    """

    config_fields = ("num_experts", "expert_units", "gate_dropout")

    def __init__(self, task_names: Sequence[str], num_experts: int, expert_units: Sequence[int],
                 gate_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(task_names, **kwargs)
        self.num_experts = int(num_experts)
        self.expert_units = tuple(expert_units)
        self.gate_dropout = float(gate_dropout)
        self.experts = FusedExperts(self.num_experts, self.expert_units, name="experts")
        self.gates = [ExpertGate(self.num_experts, self.gate_dropout, name=name)
                      for name in self.gate_names()]

    def gate_names(self) -> list[str]:
        """The layer names of the gates, one per gate."""
        raise NotImplementedError

    def output_dim(self, input_dim: int) -> int:
        return self.experts.output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        """Experts, then per gate its logits (d_in · n) and its mixture (n · d)."""
        per_gate = self.gates[0].multiplications(input_dim) + self.num_experts * self.output_dim(input_dim)
        return self.experts.multiplications(input_dim) + len(self.gates) * per_gate


class MMoE(ExpertMixture):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018; the paper's choice).

    n experts shared by all tasks, one softmax gate per task:
        f_k(x) = Σ_i g_k(x)_i · expert_i(x),   g_k(x) = softmax(W_k x).
    Per-task gates let conflicting tasks (click vs. dismiss) lean on different
    experts while still sharing what is common, at the cost of n expert MLPs
    instead of one shared bottom.
    """

    def gate_names(self) -> list[str]:
        return [f"gate_{t}" for t in self.task_names]

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        expert_outputs = self.experts(x)  # [B, n, d]
        task_inputs, gates = [], {}
        for task, gate_layer in zip(self.task_names, self.gates, strict=True):
            g = gate_layer(x, training=training)
            gates[task] = g
            task_inputs.append(mix(g, expert_outputs))
        return task_inputs, gates


class OMoE(ExpertMixture):
    """One-gate Mixture-of-Experts: the same mixture f(x) = Σ_i g(x)_i · expert_i(x) for every task.

    The paper's ablation between shared-bottom and MMoE: experts, but no per-task
    routing. Every task's entry in the gate dict is the one shared gate.
    """

    def gate_names(self) -> list[str]:
        return ["gate"]

    @property
    def gate(self) -> ExpertGate:
        """The one gate every task reads."""
        return self.gates[0]

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        # The gate is called (and built) before the experts, as it always was: the order in
        # which variables are created decides their seeded initial values.
        g = self.gate(x, training=training)
        mixed = mix(g, self.experts(x))
        return [mixed for _ in self.task_names], {task: g for task in self.task_names}
