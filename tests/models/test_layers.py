"""Tests of models/layers/: each layer alone, on small tensors built here."""

from __future__ import annotations

import math

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import ARCHITECTURES, Config, ModelSection
from watchnext.models import layers as L
from watchnext.models.layers.gates import mix

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

TASKS = ("click", "watch_time", "rating")


@pytest.fixture(autouse=True)
def _seed() -> None:
    tf_keras.utils.set_random_seed(1234)


def _x(batch: int = 8, dim: int = 6) -> tf.Tensor:
    return tf.random.normal([batch, dim])


# ---------------------------------------------------------------------------
# MLP, Tower


def test_mlp_stacks_dense_layers_and_empty_units_is_identity() -> None:
    mlp = L.MLP([5, 3])
    x = _x()
    assert mlp(x).shape == (8, 3)
    assert mlp.multiplications(6) == 6 * 5 + 5 * 3
    identity = L.MLP([])
    np.testing.assert_array_equal(identity(x).numpy(), x.numpy())
    assert identity.output_dim(6) == 6


def test_tower_gives_one_value_per_example() -> None:
    tower = L.Tower([4])
    assert tower(_x()).shape == (8,)
    assert tower.multiplications(6) == 6 * 4 + 4 * 1


def test_tower_output_bias_starts_at_the_given_prior() -> None:
    tower = L.Tower([4], output_bias=-2.5)
    tower(_x())
    assert tower.out.bias.numpy().tolist() == [-2.5]
    # A tower whose hidden units are all zero outputs exactly its bias.
    assert np.allclose(tower(tf.zeros([3, 6])).numpy(), -2.5)


# ---------------------------------------------------------------------------
# ExpertGate


def test_gate_is_a_distribution_over_experts() -> None:
    gate = L.ExpertGate(4, dropout_rate=0.1)
    g = gate(_x(32), training=False).numpy()
    assert g.shape == (32, 4)
    np.testing.assert_allclose(g.sum(axis=1), 1.0, rtol=1e-6)
    assert (g > 0).all()


def test_gate_dropout_zeroes_experts_at_the_configured_rate_and_renormalizes() -> None:
    rate, n, rows = 0.1, 4, 20000
    gate = L.ExpertGate(n, dropout_rate=rate)
    x = _x(rows)
    plain = gate(x, training=False).numpy()
    dropped = gate(x, training=True).numpy()
    np.testing.assert_allclose(dropped.sum(axis=1), 1.0, rtol=1e-5)
    zero = dropped == 0.0
    # An entry is zero when dropped, unless its whole row was dropped (then the row keeps
    # its softmax): P = rate · (1 - rate^(n-1)).
    expected = rate * (1 - rate ** (n - 1))
    assert abs(zero.mean() - expected) < 0.01, zero.mean()
    # Survivors are the undropped weights rescaled by one factor per row.
    some = np.where(zero.any(axis=1))[0][:50]
    assert len(some) > 0
    for i in some:
        kept = ~zero[i]
        np.testing.assert_allclose(dropped[i, kept], plain[i, kept] / plain[i, kept].sum(), rtol=1e-5)


def test_gate_with_every_expert_dropped_keeps_its_softmax() -> None:
    gate = L.ExpertGate(2, dropout_rate=0.95)
    x = _x(4000)
    plain = gate(x, training=False).numpy()
    dropped = gate(x, training=True).numpy()
    assert np.isfinite(dropped).all()
    np.testing.assert_allclose(dropped.sum(axis=1), 1.0, rtol=1e-5)
    unchanged = np.all(dropped == plain, axis=1)
    # Both dropped with probability 0.95² ≈ 0.90; those rows equal the plain softmax.
    assert 0.85 < unchanged.mean() < 0.95, unchanged.mean()


def test_gate_at_inference_is_deterministic() -> None:
    gate = L.ExpertGate(4, dropout_rate=0.5)
    x = _x(64)
    np.testing.assert_array_equal(gate(x).numpy(), gate(x, training=False).numpy())
    np.testing.assert_array_equal(gate(x, training=False).numpy(), gate(x, training=False).numpy())


def test_gate_rejects_a_dropout_rate_of_one() -> None:
    with pytest.raises(ValueError, match="dropout_rate"):
        L.ExpertGate(3, dropout_rate=1.0)


# ---------------------------------------------------------------------------
# Mixing layers


def test_mmoe_output_is_the_gate_weighted_sum_of_experts() -> None:
    layer = L.MMoE(TASKS, num_experts=3, expert_units=[5], gate_dropout=0.0)
    x = _x()
    task_inputs, gates = layer(x, training=False)
    assert len(task_inputs) == len(TASKS) and set(gates) == set(TASKS)
    experts = layer.experts(x).numpy()  # [B, n, d]
    for k, task in enumerate(TASKS):
        g = gates[task].numpy()
        assert g.shape == (8, 3)
        np.testing.assert_allclose(task_inputs[k].numpy(), np.einsum("bn,bnd->bd", g, experts), rtol=1e-5)
    # Different gates: tasks get different mixtures of the same experts.
    assert not np.allclose(gates[TASKS[0]].numpy(), gates[TASKS[1]].numpy())


def test_omoe_shares_one_gate_and_one_mixture() -> None:
    layer = L.OMoE(TASKS, num_experts=3, expert_units=[5])
    task_inputs, gates = layer(_x(), training=False)
    for k in range(1, len(TASKS)):
        np.testing.assert_array_equal(task_inputs[k].numpy(), task_inputs[0].numpy())
        np.testing.assert_array_equal(gates[TASKS[k]].numpy(), gates[TASKS[0]].numpy())


def test_gateless_layers_report_a_one_expert_gate() -> None:
    x = _x()
    shared, shared_gates = L.SharedBottom(TASKS, [5])(x)
    np.testing.assert_array_equal(shared[0].numpy(), shared[-1].numpy())
    separate, separate_gates = L.SingleTask(TASKS, [5])(x)
    assert not np.allclose(separate[0].numpy(), separate[1].numpy())
    for gates in (shared_gates, separate_gates):
        assert set(gates) == set(TASKS)
        np.testing.assert_array_equal(gates[TASKS[0]].numpy(), np.ones((8, 1)))


def test_cgc_task_gates_see_own_and_shared_experts() -> None:
    layer = L.CGC(TASKS, task_experts=2, shared_experts=3, expert_units=[5])
    task_inputs, gates = layer(_x(), training=False)
    assert [t.shape for t in task_inputs] == [(8, 5)] * len(TASKS)
    for task in TASKS:
        assert gates[task].shape == (8, 2 + 3)
        np.testing.assert_allclose(gates[task].numpy().sum(axis=1), 1.0, rtol=1e-6)
    level = layer.level
    assert level.common_gate is None
    # Task 0's mixture uses its own experts then the shared ones, in that order.
    x = _x()
    outs, _ = layer(x, training=False)
    stacked = np.concatenate([level.experts_of_task[0](x).numpy(), level.common_experts(x).numpy()], axis=1)
    g = level.task_gates[0](x).numpy()
    np.testing.assert_allclose(outs[0].numpy(), np.einsum("bn,bnd->bd", g, stacked), rtol=1e-5)


def test_cgc_is_ple_with_one_level() -> None:
    cgc = L.CGC(TASKS, 2, 3, [5], gate_dropout=0.1, name="m")
    ple = L.PLE(TASKS, 2, 3, [5], levels=1, gate_dropout=0.1, name="m")
    x = _x()
    cgc(x, training=False)
    ple(x, training=False)
    assert [v.name for v in cgc.weights] == [v.name for v in ple.weights]
    ple.set_weights(cgc.get_weights())
    (cgc_out, cgc_gates), (ple_out, ple_gates) = cgc(x, training=False), ple(x, training=False)
    for a, b in zip(cgc_out, ple_out, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for task in TASKS:
        np.testing.assert_array_equal(cgc_gates[task].numpy(), ple_gates[task].numpy())
    assert cgc.multiplications(6) == ple.multiplications(6) and cgc.output_dim(6) == ple.output_dim(6)


def test_ple_stacks_levels_with_a_shared_gate_below_the_top() -> None:
    layer = L.PLE(TASKS, task_experts=1, shared_experts=2, expert_units=[4], levels=3)
    task_inputs, gates = layer(_x(), training=True)
    assert [t.shape for t in task_inputs] == [(8, 4)] * len(TASKS)
    assert [lvl.common_gate is not None for lvl in layer.extraction_levels] == [True, True, False]
    # The lower levels' shared gates see every expert of the level.
    assert layer.extraction_levels[0].common_gate.num_experts == len(TASKS) * 1 + 2
    assert all(gates[t].shape == (8, 1 + 2) for t in TASKS)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_factory_builds_each_architecture_with_one_interface(architecture: str) -> None:
    config = Config().replace(model=ModelSection(architecture=architecture, num_experts=2,
                                                 expert_units=(4,), shared_hidden_units=6))
    layer = L.mixing_layer_from_config(config)
    task_inputs, gates = layer(_x(5, 6), training=False)
    assert len(task_inputs) == len(config.heads)
    assert list(gates) == config.head_names
    for g in gates.values():
        np.testing.assert_allclose(g.numpy().sum(axis=1), 1.0, rtol=1e-6)
    assert all(t.shape == (5, layer.output_dim(6)) for t in task_inputs)


# ---------------------------------------------------------------------------
# FusedExperts: the experts of a level as batched matmuls


def _per_expert_mlps(n: int, units: list[int], x: tf.Tensor) -> list[L.MLP]:
    """Today's per-expert form: n separate MLPs, built on x and with random (nonzero) biases too."""
    mlps = [L.MLP(units, name=f"expert_{i}") for i in range(n)]
    for mlp in mlps:
        mlp(x)
        mlp.set_weights([np.random.default_rng(len(w.shape)).normal(size=w.shape).astype(np.float32) * 0.5
                         if w.ndim == 1 else w for w in mlp.get_weights()])
    return mlps


@pytest.mark.parametrize("units", [[5], [7, 3]])
def test_fused_experts_compute_exactly_the_per_expert_mlps_from_stacked_weights(units: list[int]) -> None:
    x = _x(16, 6)
    mlps = _per_expert_mlps(4, units, x)
    fused = L.FusedExperts(4, units)
    fused(x)
    assert [w.shape for w in fused.get_weights()] == [
        (4, d_in, d_out) if j % 2 == 0 else (4, d_out)
        for d_in, d_out in zip([6, *units[:-1]], units, strict=True) for j in (0, 1)]
    fused.set_weights(L.stack_expert_weights([m.get_weights() for m in mlps]))
    got = fused(x).numpy()  # [B, n, d]
    for e, mlp in enumerate(mlps):
        np.testing.assert_allclose(got[:, e], mlp(x).numpy(), rtol=1e-6, atol=1e-6)
    # One input per expert ([B, n, d]), as PLE's upper levels feed them.
    per_input = tf.random.normal([16, 4, 6])
    got = fused(per_input).numpy()
    for e, mlp in enumerate(mlps):
        np.testing.assert_allclose(got[:, e], mlp(per_input[:, e]).numpy(), rtol=1e-6, atol=1e-6)
    assert fused.multiplications(6) == 4 * mlps[0].multiplications(6)


def test_mmoe_with_stacked_per_expert_weights_gives_the_per_expert_outputs_and_gates() -> None:
    """The whole MMoE: per-expert MLPs + its own gates, mixed by hand, equal the fused layer."""
    x = _x(16, 6)
    layer = L.MMoE(TASKS, num_experts=3, expert_units=[5, 4])
    layer(x, training=False)
    mlps = _per_expert_mlps(3, [5, 4], x)
    layer.experts.set_weights(L.stack_expert_weights([m.get_weights() for m in mlps]))
    task_inputs, gates = layer(x, training=False)
    per_expert = np.stack([m(x).numpy() for m in mlps], axis=1)
    for k, task in enumerate(TASKS):
        g = layer.gates[k](x, training=False).numpy()
        np.testing.assert_allclose(gates[task].numpy(), g, rtol=1e-6)
        np.testing.assert_allclose(task_inputs[k].numpy(), np.einsum("bn,bnd->bd", g, per_expert),
                                   rtol=1e-5, atol=1e-6)


def test_fused_experts_start_like_dense_kernels_and_round_trip_their_config() -> None:
    fused = L.FusedExperts(8, [64], name="experts")
    fused(_x(2, 256))
    kernel = fused.kernels[0].numpy()
    # Glorot-uniform per expert: limit sqrt(6 / (256 + 64)), not the stacked shape's smaller one.
    limit = math.sqrt(6.0 / (256 + 64))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert not np.allclose(kernel[0], kernel[1])
    assert [v.name for v in fused.weights] == ["experts/kernel_0:0", "experts/bias_0:0"]
    clone = L.FusedExperts.from_config(fused.get_config())
    assert (clone.num_experts, clone.units, clone.activation, clone.name) == (8, (64,), "relu", "experts")
    identity = L.FusedExperts(2, [])
    x = _x()
    np.testing.assert_array_equal(identity(x).numpy(), np.stack([x.numpy()] * 2, axis=1))


def _einsum_experts(fused: L.FusedExperts, x: tf.Tensor) -> tf.Tensor:
    """The experts as FusedExperts first computed them: one einsum over the stacked kernels per layer."""
    h = x
    for kernel, bias in zip(fused.kernels, fused.biases, strict=True):
        h = tf.nn.relu(tf.einsum("bd,nde->bne" if h.shape.rank == 2 else "bnd,nde->bne", h, kernel) + bias)
    return h


@pytest.mark.parametrize("units", [[5], [7, 3], [16, 8, 4]])
def test_fused_experts_outputs_and_gradients_equal_the_einsum_form(units: list[int]) -> None:
    """The plain matmuls of a shared input (one chain of matmul + bias_add per expert, on slices of
    the stacked weights) change how the experts are computed, not what: outputs and every weight's
    gradient equal the einsum form's."""
    fused = L.FusedExperts(3, units)
    x = _x(16, 6)
    fused(x)
    fused.set_weights([w + np.random.default_rng(w.ndim).normal(size=w.shape).astype(np.float32) * 0.1
                       for w in fused.get_weights()])  # nonzero biases, so every term shows
    upstream = tf.random.normal([16, 3, units[-1]])
    results = []
    for form in (fused, lambda x: _einsum_experts(fused, x)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = form(x)
            loss = tf.reduce_sum(out * upstream)
        results.append((out, tape.gradient(loss, [x, *fused.trainable_variables])))
    (out, grads), (ref, ref_grads) = results
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-5, atol=1e-5)


def test_mix_is_the_gate_weighted_sum_and_its_gradient() -> None:
    gate = tf.nn.softmax(tf.random.normal([8, 3]))
    experts = tf.random.normal([8, 3, 5])
    upstream = tf.random.normal([8, 5])
    results = []
    for form in (mix, lambda g, e: tf.einsum("bn,bnd->bd", g, e)):
        with tf.GradientTape() as tape:
            tape.watch([gate, experts])
            out = form(gate, experts)
            loss = tf.reduce_sum(out * upstream)
        results.append((out, tape.gradient(loss, [gate, experts])))
    (out, grads), (ref, ref_grads) = results
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-6, atol=1e-6)


def test_stack_expert_weights_names_mismatched_experts() -> None:
    with pytest.raises(ValueError, match="different numbers of weights"):
        L.stack_expert_weights([[np.zeros((2, 2))], [np.zeros((2, 2)), np.zeros(2)]])


# ---------------------------------------------------------------------------
# ShallowTower


def test_shallow_tower_bias_is_exactly_zero_for_missing_positions() -> None:
    tower = L.ShallowTower(max_position=5, num_devices=3, embedding_dim=2, units=[4], position_dropout=0.1)
    position = tf.constant([-1, 0, 3, -1, 4, 9], tf.int64)
    device = tf.constant([0, 1, 2, 2, 0, 0], tf.int64)
    bias = tower(position, device, training=False).numpy()
    assert bias.shape == (6,)
    assert bias[0] == 0.0 and bias[3] == 0.0
    # A position past the end counts as the last one (rows 4 and 5: positions 4 and 9, device 0).
    assert bias[5] == pytest.approx(bias[4], rel=1e-6)
    # Present positions can move the logit: linear tower (no hidden relu) so 0 means "masked".
    linear = L.ShallowTower(max_position=5, num_devices=3, embedding_dim=2, units=[])
    assert np.all(linear(position, device, training=False).numpy()[[1, 2, 4, 5]] != 0.0)
    # [B, 1] inputs work the same.
    np.testing.assert_array_equal(
        tower(position[:, None], device[:, None], training=False).numpy(), bias)


def test_shallow_tower_drops_positions_to_missing_in_training() -> None:
    rows, rate = 20000, 0.1
    tower = L.ShallowTower(max_position=5, num_devices=2, embedding_dim=2, units=[], position_dropout=rate)
    position = tf.fill([rows], tf.constant(2, tf.int64))
    device = tf.zeros([rows], tf.int64)
    assert np.all(tower(position, device, training=False).numpy() != 0.0)
    zero_rate = (tower(position, device, training=True).numpy() == 0.0).mean()
    assert abs(zero_rate - rate) < 0.01, zero_rate
    dropped = L.drop_position(position, rate, training=True).numpy()
    assert set(np.unique(dropped)) == {-1, 2}
    np.testing.assert_array_equal(L.drop_position(position, rate, training=False).numpy(), position.numpy())


def test_log_examination_tower_outputs_a_log_probability_and_zero_when_missing() -> None:
    tower = L.ShallowTower(max_position=5, num_devices=2, embedding_dim=2, units=[], form="log_examination")
    position = tf.constant([-1, 0, 1, 4], tf.int64)
    device = tf.constant([0, 0, 1, 1], tf.int64)
    log_e = tower(position, device, training=False).numpy()
    assert log_e[0] == 0.0
    assert np.all(log_e[1:] < 0.0)
    # It is log sigmoid of what the logit form would output from the same weights.
    logit = L.ShallowTower(max_position=5, num_devices=2, embedding_dim=2, units=[])
    logit(position, device)
    logit.set_weights(tower.get_weights())
    b = logit(position, device, training=False).numpy()
    np.testing.assert_allclose(log_e[1:], -np.log1p(np.exp(-b[1:])), rtol=1e-5)
    with pytest.raises(ValueError, match="form"):
        L.ShallowTower(5, 2, 2, [], form="multiplicative")


def test_apply_position_bias_logit_form_adds_and_log_examination_multiplies_probabilities() -> None:
    output = tf.constant([-3.0, 0.0, 2.5, 8.0, -20.0])
    log_e = tf.math.log(tf.constant([0.5, 0.2, 0.9, 1.0, 0.3]))
    # The paper's form: the bias is added to any head.
    np.testing.assert_allclose(L.apply_position_bias(output, log_e, "logit", binary=True).numpy(),
                               (output + log_e).numpy())
    # log_examination: a binary head's probability is e · sigmoid(output), returned as a logit.
    logit = L.apply_position_bias(output, log_e, "log_examination", binary=True).numpy()
    expected = np.exp(log_e.numpy()) / (1 + np.exp(-output.numpy()))
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), expected, rtol=1e-5)
    # e = 1 (log e exactly 0: position missing) leaves a binary logit exactly as it is.
    assert logit[3] == 8.0
    # Regression heads (weighted logistic: exp(logit) is the expectation) add log e in both forms.
    regression = L.apply_position_bias(output, log_e, "log_examination", binary=False)
    np.testing.assert_allclose(regression.numpy(), (output + log_e).numpy())
    # Gradients stay finite at the extremes.
    x = tf.constant([-30.0, 0.0, 30.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = L.apply_position_bias(x, tf.constant([0.0, -1e-9, -5.0]), "log_examination", binary=True)
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))


# ---------------------------------------------------------------------------
# CombinedScore


def _hand_score(preds: list[float], forms: list[str], weights: list[float], eps: float = 1e-6) -> float:
    f = {"identity": lambda v: max(v, eps), "complement": lambda v: max(1 - v, eps),
         "log1p": lambda v: math.log1p(max(v, 0.0)) + eps}
    return math.prod(f[form](p) ** w for p, form, w in zip(preds, forms, weights, strict=True))


def test_combined_score_is_the_product_of_utilities() -> None:
    forms = ["identity", "log1p", "complement", "identity"]
    weights = [1.0, 0.5, 1.0, 0.25]
    score = L.CombinedScore(forms, weights)
    rows = [[0.5, 3.0, 0.2, 4.0], [0.9, 0.0, 0.0, 2.5], [0.0, 100.0, 1.0, 1.0]]
    preds = [tf.constant([r[k] for r in rows]) for k in range(len(forms))]
    got = score(preds).numpy()
    want = [_hand_score(r, forms, weights) for r in rows]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[0] == pytest.approx(0.5 * math.sqrt(math.log(4.0)) * 0.8 * 4.0 ** 0.25, rel=1e-5)


def test_combined_score_weights_can_be_overridden() -> None:
    forms = ["identity", "log1p", "complement"]
    score = L.CombinedScore(forms, [1.0, 1.0, 1.0])
    preds = [tf.constant([0.5, 0.8]), tf.constant([2.0, 5.0]), tf.constant([0.1, 0.3])]
    base = score(preds).numpy()
    # [K]: doubling every exponent squares the score; a zero exponent drops the factor.
    np.testing.assert_allclose(score(preds, tf.constant([2.0, 2.0, 2.0])).numpy(), base ** 2, rtol=1e-5)
    only_click = score(preds, tf.constant([1.0, 0.0, 0.0])).numpy()
    np.testing.assert_allclose(only_click, [0.5, 0.8], rtol=1e-5)
    # [B, K]: one weight vector per candidate.
    per_row = score(preds, tf.constant([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])).numpy()
    np.testing.assert_allclose(per_row, [0.5, base[1]], rtol=1e-5)
    with pytest.raises(ValueError, match="columns"):
        score(preds, tf.constant([1.0, 1.0]))


# ---------------------------------------------------------------------------
# Serialization


@pytest.mark.parametrize("layer", [
    L.MLP([3, 2]),
    L.ExpertGate(3, 0.2),
    L.MMoE(TASKS, 2, [3], 0.1),
    L.OMoE(TASKS, 2, [3], 0.1),
    L.SharedBottom(TASKS, [3]),
    L.SingleTask(TASKS, [3]),
    L.CGC(TASKS, 1, 2, [3], 0.1),
    L.PLE(TASKS, 1, 2, [3], 2, 0.1),
    L.ExtractionLevel(TASKS, 1, 2, [3], 0.1, shared_gate=True),
    L.Tower([3], output_bias=0.7),
    L.ShallowTower(5, 2, 2, [3], 0.1),
    L.ShallowTower(5, 2, 2, [3], 0.1, form="log_examination"),
    L.CombinedScore(["identity", "log1p"], [1.0, 0.5]),
], ids=lambda layer: type(layer).__name__)
def test_every_layer_round_trips_through_get_config(layer: tf_keras.layers.Layer) -> None:
    config = layer.get_config()
    again = type(layer).from_config(config)
    assert again.get_config() == config
