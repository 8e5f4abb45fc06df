"""bench/experiments/true_examination: its tower outputs the simulator's own log examination."""

from __future__ import annotations

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench.experiments import true_examination
from watchnext.core.config import Config
from watchnext.models.layers.shallow_tower import ShallowTower

import numpy as np
import tensorflow as tf


def test_the_table_is_the_simulators_examination_in_vocabulary_order() -> None:
    table = true_examination.true_log_examination(Config(), ["tv", "mobile", "<unknown>"])
    positions = np.arange(table.shape[0])
    np.testing.assert_allclose(table[:, 0], -1.4 * np.log1p(positions), rtol=1e-6)  # tv: eta 1.4
    np.testing.assert_allclose(table[:, 1], -np.log1p(positions), rtol=1e-6)  # mobile: eta 1
    assert not table[:, 2].any()  # a device the simulator does not know: examined


def test_the_substituted_tower_outputs_the_table_and_zero_where_position_is_missing() -> None:
    original = ShallowTower.call
    table = np.arange(12, dtype=np.float32).reshape(4, 3) * -0.1
    try:
        true_examination.use_true_examination(table)
        tower = ShallowTower(max_position=4, num_devices=3, embedding_dim=2, units=[4], position_dropout=0.5,
                             form="log_examination")
        position = tf.constant([0, 2, 3, 9, -1], tf.int64)  # 9 is clipped to the last position
        device = tf.constant([1, 0, 2, 1, 2], tf.int64)
        with tf.GradientTape() as tape:
            bias = tower(position, device, training=True)  # no dropout: the truth is known for every row
            loss = tf.reduce_sum(bias)
        np.testing.assert_allclose(bias.numpy(), [table[0, 1], table[2, 0], table[3, 2], table[3, 1], 0.0])
        grads = tape.gradient(loss, tower.trainable_variables)
        assert grads and all(g is not None for g in grads)  # zero-weight use keeps Keras' gradients defined
    finally:
        ShallowTower.call = original
