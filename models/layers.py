"""The Watch-Next ranker's building blocks (Zhao et al., RecSys 2019), one small layer each.

Reading order follows the data: `MLP` (the dense stack everything is made of), `ExpertGate`
(g_k(x) = softmax(W_k x) with expert-utilization dropout), the mixing layers that turn the
shared hidden layer's output into one input per task (`MMoE`, `OMoE`, `SharedBottom`, `CGC`,
`PLE`, `SingleTask`, all with one interface, picked by `mixing_layer_from_config`), the
per-head `Tower`, the `ShallowTower` that learns selection bias from position and device,
and `CombinedScore`, the product of per-head utilities that ranks candidates.

Every mixing layer is called as `layer(x, training) -> (task_inputs, gates)`: a list with
one [B, d] tensor per task (config head order) and a dict, keyed by task name, of the
[B, n] softmax weights of the gate that task reads (a constant [B, 1] of ones for the
gateless shared_bottom and single_task, whose tasks each read one MLP). The model never
needs to know which architecture it holds.

The layers on the serving path also report `multiplications(input_dim)`: the multiply-adds
they spend per example, so that `models.model.multiplications_per_example` can compare
architectures the way the paper's Table 2 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import ARCHITECTURES, SCORE_FORMS, Config, Head

import numpy as np
import tensorflow as tf
import tf_keras

# What every mixing layer returns: per-task inputs and per-task gate weights.
MixingOutput = tuple[list[tf.Tensor], dict[str, tf.Tensor]]


def no_autograph(method: Any) -> Any:
    """Mark a layer method as plain graph code that AutoGraph need not convert.

    The layers' Python control flow depends only on configuration, never on tensor
    values, so AutoGraph has nothing to convert, yet it re-parses the source of every
    method it meets: on 2 CPU cores that was most of the ~35 s the first train step took
    to trace. make_decorator keeps the method's signature visible to Keras, which
    inspects `call` for its `training` argument.
    """
    return tf.__internal__.decorator.make_decorator(method, tf.autograph.experimental.do_not_convert(method))


def _smart_training(training: Any, when_training: Any, otherwise: Any) -> tf.Tensor:
    """`when_training()` if `training` (a bool, None or a bool tensor) is true, else `otherwise()`.

    Keras passes `training` as a Python bool in `fit`, but as None when nobody set it
    (inference), and tracing code may hand over a tensor; smart_cond handles all three
    without adding a tf.cond when the value is known while tracing.
    """
    if training is None:
        return otherwise()
    return tf.__internal__.smart_cond.smart_cond(training, when_training, otherwise)


def _mlp_multiplications(input_dim: int, units: Sequence[int]) -> int:
    total, d = 0, input_dim
    for u in units:
        total += d * u
        d = u
    return total


def _mlp_output_dim(input_dim: int, units: Sequence[int]) -> int:
    return units[-1] if units else input_dim


# ---------------------------------------------------------------------------
# Dense stacks.


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
        return _mlp_output_dim(input_dim, self.units)

    def multiplications(self, input_dim: int) -> int:
        """Multiply-adds per example: Σ_i d_i · d_{i+1}."""
        return _mlp_multiplications(input_dim, self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": list(self.units), "activation": self.activation}


class FusedExperts(tf_keras.layers.Layer):
    """n experts with the same dense stack, computed together: one batched matmul per layer.

    Layer i holds kernel_i ∈ R^{n × d_i × d_{i+1}} and bias_i ∈ R^{n × d_{i+1}}; expert e is the
    MLP whose layer i is (kernel_i[e], bias_i[e]):
        h_0 = x for every expert (x: [B, d_0]) or x_e (x: [B, n, d_0], one input per expert),
        h_{i+1}[b, e] = act(h_i[b, e] · kernel_i[e] + bias_i[e]),
    returned as [B, n, d_L]. It computes exactly what n separate `MLP`s compute (see
    `stack_expert_weights`), but as one einsum per layer instead of n small matmuls, so a
    level of experts costs a few large ops rather than many tiny ones, which on CPU are
    dominated by per-op overhead. Each expert's kernel starts as a Dense kernel would
    (Glorot-uniform over its own d_i × d_{i+1}), its bias at 0. With no `units` it is the
    identity: every expert passes its input through.
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
        for kernel, bias in zip(self.kernels, self.biases, strict=True):
            equation = "bd,nde->bne" if h.shape.rank == 2 else "bnd,nde->bne"
            h = self._activation(tf.einsum(equation, h, kernel) + bias)
        return h

    def output_dim(self, input_dim: int) -> int:
        return _mlp_output_dim(input_dim, self.units)

    def multiplications(self, input_dim: int) -> int:
        """Multiply-adds per example, all experts: n · Σ_i d_i · d_{i+1}."""
        return self.num_experts * _mlp_multiplications(input_dim, self.units)

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


# ---------------------------------------------------------------------------
# Gates.


class ExpertGate(tf_keras.layers.Layer):
    """A gating network g(x) = softmax(W x) ∈ R^n with expert-utilization dropout.

    Gates in MMoE tend to polarize: a task's gate puts ~all weight on one expert and the
    other experts stop receiving gradient from it. The paper counters this by dropping
    experts from the gate while training: each weight g_i is zeroed with probability
    `dropout_rate` and the survivors are renormalized, g'_i = m_i g_i / Σ_j m_j g_j,
    so the gate still sums to 1 and each task learns to use more than one expert.
    A row whose experts are all dropped keeps its undropped softmax (renormalizing
    zero by zero would give NaN). At inference the gate is the plain softmax.
    """

    def __init__(self, num_experts: int, dropout_rate: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"ExpertGate dropout_rate must be in [0, 1), got {dropout_rate}")
        self.num_experts = int(num_experts)
        self.dropout_rate = float(dropout_rate)
        # No bias: g(x) = softmax(W x) as in the paper; a bias would be a constant prior.
        self.logits = tf_keras.layers.Dense(self.num_experts, use_bias=False, name="logits")

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        weights = tf.nn.softmax(self.logits(x), axis=-1)
        if self.dropout_rate == 0.0:
            return weights
        return _smart_training(training, lambda: self._drop_experts(weights), lambda: weights)

    def _drop_experts(self, weights: tf.Tensor) -> tf.Tensor:
        keep = tf.cast(tf.random.uniform(tf.shape(weights)) >= self.dropout_rate, weights.dtype)
        kept = weights * keep
        total = tf.reduce_sum(kept, axis=-1, keepdims=True)
        # divide_no_nan only to keep the unused branch of the where finite for gradients.
        return tf.where(total > 0.0, tf.math.divide_no_nan(kept, total), weights)

    def multiplications(self, input_dim: int) -> int:
        return input_dim * self.num_experts

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_experts": self.num_experts, "dropout_rate": self.dropout_rate}


def _mix(gate: tf.Tensor, experts: tf.Tensor) -> tf.Tensor:
    """Σ_i g_i · expert_i: [B, n] weights and the experts' outputs [B, n, d] → [B, d]."""
    return tf.einsum("bn,bnd->bd", gate, experts)


def _single_expert_gate(h: tf.Tensor) -> tf.Tensor:
    """The trivial gate of a task that reads exactly one "expert": weight 1, shape [B, 1].

    Shared-bottom and single-task report it so every architecture fills the gate dict the
    same way (an export signature cannot return an empty dict).
    """
    return tf.ones_like(h[:, :1])


# ---------------------------------------------------------------------------
# Mixing layers: shared hidden layer output → one input per task.


class MMoE(tf_keras.layers.Layer):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018; the paper's choice).

    n experts shared by all tasks, one softmax gate per task:
        f_k(x) = Σ_i g_k(x)_i · expert_i(x),   g_k(x) = softmax(W_k x).
    Per-task gates let conflicting tasks (click vs. dismiss) lean on different
    experts while still sharing what is common, at the cost of n expert MLPs
    instead of one shared bottom.
    """

    def __init__(self, task_names: Sequence[str], num_experts: int, expert_units: Sequence[int],
                 gate_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)
        self.num_experts = int(num_experts)
        self.expert_units = tuple(expert_units)
        self.gate_dropout = float(gate_dropout)
        self.experts = FusedExperts(self.num_experts, self.expert_units, name="experts")
        self.gates = [ExpertGate(self.num_experts, self.gate_dropout, name=f"gate_{t}")
                      for t in self.task_names]

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        expert_outputs = self.experts(x)  # [B, n, d]
        task_inputs, gates = [], {}
        for task, gate_layer in zip(self.task_names, self.gates, strict=True):
            g = gate_layer(x, training=training)
            gates[task] = g
            task_inputs.append(_mix(g, expert_outputs))
        return task_inputs, gates

    def output_dim(self, input_dim: int) -> int:
        return self.experts.output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        d = self.output_dim(input_dim)
        experts = self.experts.multiplications(input_dim)
        per_gate = self.gates[0].multiplications(input_dim) + self.num_experts * d
        return experts + len(self.task_names) * per_gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names),
                "num_experts": self.num_experts, "expert_units": list(self.expert_units),
                "gate_dropout": self.gate_dropout}


class OMoE(tf_keras.layers.Layer):
    """One-gate Mixture-of-Experts: the same mixture f(x) = Σ_i g(x)_i · expert_i(x) for every task.

    The paper's ablation between shared-bottom and MMoE: experts, but no per-task
    routing. Every task's entry in the gate dict is the one shared gate.
    """

    def __init__(self, task_names: Sequence[str], num_experts: int, expert_units: Sequence[int],
                 gate_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)
        self.num_experts = int(num_experts)
        self.expert_units = tuple(expert_units)
        self.gate_dropout = float(gate_dropout)
        self.experts = FusedExperts(self.num_experts, self.expert_units, name="experts")
        self.gate = ExpertGate(self.num_experts, self.gate_dropout, name="gate")

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        g = self.gate(x, training=training)
        mixed = _mix(g, self.experts(x))
        return [mixed for _ in self.task_names], {task: g for task in self.task_names}

    def output_dim(self, input_dim: int) -> int:
        return self.experts.output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        d = self.output_dim(input_dim)
        experts = self.experts.multiplications(input_dim)
        return experts + self.gate.multiplications(input_dim) + self.num_experts * d

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names),
                "num_experts": self.num_experts, "expert_units": list(self.expert_units),
                "gate_dropout": self.gate_dropout}


class SharedBottom(tf_keras.layers.Layer):
    """Hard parameter sharing: one MLP h(x) feeds every task's tower (no experts, no gates).

    The gate dict holds each task's trivial one-expert gate (ones, [B, 1]).
    """

    def __init__(self, task_names: Sequence[str], units: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)
        self.units = tuple(units)
        self.bottom = MLP(self.units, name="bottom")

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        h = self.bottom(x)
        return [h for _ in self.task_names], {task: _single_expert_gate(h) for task in self.task_names}

    def output_dim(self, input_dim: int) -> int:
        return self.bottom.output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        return self.bottom.multiplications(input_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names), "units": list(self.units)}


class SingleTask(tf_keras.layers.Layer):
    """No sharing above the shared hidden layer: task k reads its own MLP h_k(x).

    The gate dict holds each task's trivial one-expert gate (ones, [B, 1]).
    """

    def __init__(self, task_names: Sequence[str], units: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)
        self.units = tuple(units)
        self.task_mlps = [MLP(self.units, name=f"mlp_{t}") for t in self.task_names]

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        outputs = [mlp(x) for mlp in self.task_mlps]
        gates = {task: _single_expert_gate(h) for task, h in zip(self.task_names, outputs, strict=True)}
        return outputs, gates

    def output_dim(self, input_dim: int) -> int:
        return self.task_mlps[0].output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        return len(self.task_names) * self.task_mlps[0].multiplications(input_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names), "units": list(self.units)}


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
            task_outputs.append(_mix(g, tf.concat(own_out + shared_out, axis=1)))
        shared_mixed = None
        if self.common_gate is not None:
            shared_mixed = _mix(self.common_gate(shared_x, training=training),
                                tf.concat(all_out + shared_out, axis=1))
        return task_outputs, shared_mixed, gates

    def output_dim(self, input_dim: int) -> int:
        return _mlp_output_dim(input_dim, self.expert_units)

    def multiplications(self, input_dim: int) -> int:
        d = self.output_dim(input_dim)
        n_experts = len(self.task_names) * self.task_experts + self.shared_experts
        total = n_experts * _mlp_multiplications(input_dim, self.expert_units)
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


class CGC(tf_keras.layers.Layer):
    """Customized Gate Control: a single `ExtractionLevel` (Tang et al., RecSys 2020).

    Task k: y_k = Σ_{e ∈ E_k ∪ S} g_k(x)_e · e(x), with g_k over its own experts E_k then the
    shared experts S (in that order in the gate dict's columns).
    """

    def __init__(self, task_names: Sequence[str], task_experts: int, shared_experts: int,
                 expert_units: Sequence[int], gate_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_names = tuple(task_names)
        self.task_experts = int(task_experts)
        self.shared_experts = int(shared_experts)
        self.expert_units = tuple(expert_units)
        self.gate_dropout = float(gate_dropout)
        self.level = ExtractionLevel(self.task_names, self.task_experts, self.shared_experts,
                                     self.expert_units, self.gate_dropout, shared_gate=False, name="level_0")

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        task_outputs, _, gates = self.level([x] * len(self.task_names) + [x], training=training)
        return task_outputs, gates

    def output_dim(self, input_dim: int) -> int:
        return self.level.output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        return self.level.multiplications(input_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names),
                "task_experts": self.task_experts, "shared_experts": self.shared_experts,
                "expert_units": list(self.expert_units), "gate_dropout": self.gate_dropout}


class PLE(tf_keras.layers.Layer):
    """Progressive Layered Extraction: `levels` stacked `ExtractionLevel`s (Tang et al., RecSys 2020).

    Level 1 reads x for every task and for the shared experts; level l+1's task-k experts
    read level l's y_k and its shared experts read level l's shared mixture y_s. Only
    levels below the top have the shared gate (nothing reads y_s above the top). The
    gate dict holds the top level's task gates, the ones whose mixtures the towers read.
    """

    def __init__(self, task_names: Sequence[str], task_experts: int, shared_experts: int,
                 expert_units: Sequence[int], levels: int, gate_dropout: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if levels < 1:
            raise ValueError(f"PLE needs at least one level, got levels={levels}")
        self.task_names = tuple(task_names)
        self.task_experts = int(task_experts)
        self.shared_experts = int(shared_experts)
        self.expert_units = tuple(expert_units)
        self.levels = int(levels)
        self.gate_dropout = float(gate_dropout)
        self.extraction_levels = [
            ExtractionLevel(self.task_names, self.task_experts, self.shared_experts, self.expert_units,
                            self.gate_dropout, shared_gate=(i < self.levels - 1), name=f"level_{i}")
            for i in range(self.levels)
        ]

    @no_autograph
    def call(self, x: tf.Tensor, training: Any = None) -> MixingOutput:
        task_x, shared_x = [x] * len(self.task_names), x
        gates: dict[str, tf.Tensor] = {}
        for level in self.extraction_levels:
            # Only the top level returns no shared mixture, and nothing reads it after the loop.
            task_x, shared_x, gates = level([*task_x, shared_x], training=training)
        return task_x, gates

    def output_dim(self, input_dim: int) -> int:
        return _mlp_output_dim(input_dim, self.expert_units)

    def multiplications(self, input_dim: int) -> int:
        total, d = 0, input_dim
        for level in self.extraction_levels:
            total += level.multiplications(d)
            d = level.output_dim(d)
        return total

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "task_names": list(self.task_names),
                "task_experts": self.task_experts, "shared_experts": self.shared_experts,
                "expert_units": list(self.expert_units), "levels": self.levels,
                "gate_dropout": self.gate_dropout}


def mixing_layer_from_config(config: Config) -> tf_keras.layers.Layer:
    """The mixing layer named by `config.model.architecture`, one task per head (config order).

    Experts are sized by `model.expert_units`; mmoe/omoe use `model.num_experts` experts,
    cgc/ple use `model.num_experts` shared experts plus `model.task_experts` per task,
    and shared_bottom/single_task use one MLP of `model.expert_units` (shared or per task).
    """
    m = config.model
    tasks = config.head_names
    builders = {
        "mmoe": lambda: MMoE(tasks, m.num_experts, m.expert_units, m.gate_dropout, name="mmoe"),
        "omoe": lambda: OMoE(tasks, m.num_experts, m.expert_units, m.gate_dropout, name="omoe"),
        "shared_bottom": lambda: SharedBottom(tasks, m.expert_units, name="shared_bottom"),
        "cgc": lambda: CGC(tasks, m.task_experts, m.num_experts, m.expert_units, m.gate_dropout, name="cgc"),
        "ple": lambda: PLE(tasks, m.task_experts, m.num_experts, m.expert_units, m.ple_levels,
                           m.gate_dropout, name="ple"),
        "single_task": lambda: SingleTask(tasks, m.expert_units, name="single_task"),
    }
    assert set(builders) == set(ARCHITECTURES), "every configurable architecture needs a builder"
    if m.architecture not in builders:
        raise ValueError(f"config key model.architecture: {m.architecture!r} is not one of {ARCHITECTURES}")
    return builders[m.architecture]()


# ---------------------------------------------------------------------------
# Towers.


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
    """

    def __init__(self, max_position: int, num_devices: int, embedding_dim: int, units: Sequence[int],
                 position_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= position_dropout < 1.0:
            raise ValueError(f"ShallowTower position_dropout must be in [0, 1), got {position_dropout}")
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
        return tf.where(missing, tf.zeros_like(bias), bias)

    def multiplications(self, input_dim: int = 0) -> int:
        d = 3 * self.embedding_dim
        return self.hidden.multiplications(d) + self.hidden.output_dim(d)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_position": self.max_position, "num_devices": self.num_devices,
                "embedding_dim": self.embedding_dim, "units": list(self.units),
                "position_dropout": self.position_dropout}


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

    return _smart_training(training, dropped, lambda: position)


# ---------------------------------------------------------------------------
# Combined score.


class CombinedScore(tf_keras.layers.Layer):
    """The ranking score: s = Π_k f_k(ŷ_k)^{w_k}, computed as exp(Σ_k w_k · log f_k(ŷ_k)).

    f_k depends on the head's `score_form`:
        identity:   f = max(ŷ, ε)                  (a probability, or a positive value)
        complement: f = max(1 - ŷ, ε)              (a bad event such as dismiss)
        log1p:      f = log(1 + max(ŷ, 0)) + ε     (a heavy-tailed value such as watch time)
    The log space keeps a product of small probabilities from underflowing and turns
    the exponents into a weighted sum; ε keeps log finite when a prediction hits 0.
    Weights default to each head's `score_weight` and can be overridden per call by a
    [K] or [B, K] tensor (K heads, in config order), e.g. to tune them online.
    """

    def __init__(self, score_forms: Sequence[str], score_weights: Sequence[float], epsilon: float = 1e-6,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(score_forms) != len(score_weights):
            raise ValueError(f"CombinedScore got {len(score_forms)} score_forms but "
                             f"{len(score_weights)} score_weights")
        for form in score_forms:
            if form not in SCORE_FORMS:
                raise ValueError(f"CombinedScore score_form {form!r} is not one of {SCORE_FORMS}")
        self.score_forms = tuple(score_forms)
        self.score_weights = tuple(float(w) for w in score_weights)
        self.epsilon = float(epsilon)

    @classmethod
    def from_heads(cls, heads: Sequence[Head], **kwargs: Any) -> CombinedScore:
        """One factor per head: f_k from `head.score_form`, w_k = `head.score_weight`."""
        return cls([h.score_form for h in heads], [h.score_weight for h in heads], **kwargs)

    def log_utilities(self, predictions: Sequence[tf.Tensor]) -> tf.Tensor:
        """log f_k(ŷ_k) for each head, [B, K]."""
        if len(predictions) != len(self.score_forms):
            raise ValueError(f"CombinedScore expects {len(self.score_forms)} predictions (one per head), "
                             f"got {len(predictions)}")
        eps = self.epsilon
        columns = []
        for form, pred in zip(self.score_forms, predictions, strict=True):
            pred = tf.cast(as_batch_vector(pred), tf.float32)
            if form == "identity":
                f = tf.maximum(pred, eps)
            elif form == "complement":
                f = tf.maximum(1.0 - pred, eps)
            else:  # log1p
                f = tf.math.log1p(tf.maximum(pred, 0.0)) + eps
            columns.append(tf.math.log(f))
        return tf.stack(columns, axis=-1)

    @no_autograph
    def call(self, predictions: Sequence[tf.Tensor], weights: tf.Tensor | None = None) -> tf.Tensor:
        """`predictions`: K serving-scale [B] tensors (config head order). Returns s, [B]."""
        log_f = self.log_utilities(predictions)
        if weights is None:
            w = tf.constant(self.score_weights, tf.float32)[tf.newaxis, :]
        else:
            w = tf.cast(tf.convert_to_tensor(weights), tf.float32)
            if w.shape.rank == 1:
                w = w[tf.newaxis, :]
            elif w.shape.rank != 2:
                raise ValueError(f"score weights must be [K] or [B, K], got shape {w.shape}")
            if w.shape[-1] is not None and w.shape[-1] != len(self.score_forms):
                raise ValueError(f"score weights have {w.shape[-1]} columns, the model has "
                                 f"{len(self.score_forms)} heads")
        return tf.exp(tf.reduce_sum(w * log_f, axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "score_forms": list(self.score_forms),
                "score_weights": list(self.score_weights), "epsilon": self.epsilon}


__all__ = [
    "CGC",
    "MLP",
    "PLE",
    "CombinedScore",
    "ExpertGate",
    "ExtractionLevel",
    "FusedExperts",
    "MMoE",
    "OMoE",
    "ShallowTower",
    "SharedBottom",
    "SingleTask",
    "Tower",
    "as_batch_vector",
    "drop_position",
    "mixing_layer_from_config",
    "stack_expert_weights",
]
