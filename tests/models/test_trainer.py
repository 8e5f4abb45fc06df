"""The Trainer stops with a clear error, and exports nothing, when the loss stops being finite."""

from __future__ import annotations

# The module, not its names: TFX's Trainer reloads run_fn's module in place (importlib.reload)
# when an earlier test ran a pipeline, which replaces the classes a `from ... import` kept.
from watchnext.models import trainer

import numpy as np
import pytest
import tensorflow as tf
import tf_keras


def test_nan_loss_stops_training_with_the_step_named():
    model = tf_keras.Sequential([tf_keras.layers.Dense(1)])

    def exploding(y_true, y_pred):
        step = tf.cast(model.optimizer.iterations, tf.float32)
        return tf.reduce_mean(tf.square(y_pred - y_true)) + tf.where(step >= 3.0, np.nan, 0.0)

    model.compile(optimizer="sgd", loss=exploding)
    x = np.ones((64, 2), np.float32)
    with pytest.raises(trainer.TrainingDiverged, match=r"training loss is nan at step 4/10"):
        model.fit(x, x[:, :1], batch_size=8, epochs=1, steps_per_epoch=10, verbose=0,
                  callbacks=[trainer.ProgressLogger(10)])
