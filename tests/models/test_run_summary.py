"""training.json: the Trainer's budget and the shallow tower's learned position curve."""

from __future__ import annotations

import watchnext  # noqa: F401
from watchnext.models import run_summary
from watchnext.models.layers import ShallowTower

import numpy as np
import tensorflow as tf


def test_position_curve_is_the_towers_bias_per_position_and_device():
    tower = ShallowTower(max_position=5, num_devices=3, embedding_dim=4, units=(8,))
    curve = run_summary.position_curve(tower, ["mobile", "tv"])  # device id 2 is an OOV row: left out
    assert curve["positions"] == [0, 1, 2, 3, 4] and set(curve["bias"]) == {"mobile", "tv"}
    expected = tower(tf.constant([3], tf.int64), tf.constant([1], tf.int64), training=False)
    assert curve["bias"]["tv"][3] == np.round(float(np.reshape(expected.numpy(), [-1])[0]), 5)
    assert run_summary.position_curve(None, ["mobile"]) is None


def test_write_and_read_round_trip(tmp_path):
    run_summary.write(str(tmp_path), train_examples=1000, batch_size=256, steps=12, best_step=8,
                      stop_reason="ran the budget", position=None)
    summary = run_summary.read(str(tmp_path))
    assert summary["epochs"] == 3.072 and summary["best_step"] == 8 and summary["position_curve"] is None
    assert run_summary.read(str(tmp_path / "older_run")) is None
