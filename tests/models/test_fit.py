"""The Trainer stops with a clear error, and exports nothing, when the loss stops being finite."""

from __future__ import annotations

# The module, not its names: TFX's Trainer reloads run_fn's module in place (importlib.reload)
# when an earlier test ran a pipeline, which replaces the classes a `from ... import` kept.
from watchnext.models import callbacks, fit

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
    with pytest.raises(callbacks.TrainingDiverged, match=r"training loss is nan at step 4/10"):
        model.fit(x, x[:, :1], batch_size=8, epochs=1, steps_per_epoch=10, verbose=0,
                  callbacks=[callbacks.ProgressLogger(10)])


# ---------------------------------------------------------------------------
# The budget: epochs → steps.


def _config(**training: object):
    from watchnext.core.config import load_config

    return load_config(None, {"training": training})


def test_epochs_become_steps_from_the_counted_examples_with_the_last_partial_batch_a_step():
    budget = fit.training_budget(1000, _config(batch_size=256, epochs=3))
    assert (budget.steps_per_epoch, budget.total_steps, budget.explicit) == (4, 12, False)
    # Validation once per epoch unless an interval is set; never less often than the whole run.
    assert budget.validation_interval == 4
    assert fit.training_budget(1024, _config(batch_size=256, epochs=2)).total_steps == 8
    assert fit.training_budget(1000, _config(batch_size=256, epochs=1, validation_interval_steps=5)
                                   ).validation_interval == 4
    assert fit.training_budget(100_000, _config(batch_size=1000, validation_interval_steps=30)
                                   ).validation_interval == 30
    assert "1,000 train examples → 4 steps/epoch (batch 256) × 3 epochs = 12 steps" in budget.describe()


def test_train_steps_overrides_epochs_exactly():
    budget = fit.training_budget(1000, _config(batch_size=128, epochs=5, train_steps=80))
    assert (budget.total_steps, budget.explicit) == (80, True)
    assert "overrides epochs, 80 steps = 10.24 epochs" in budget.describe()


def test_an_empty_train_split_is_an_error():
    with pytest.raises(ValueError, match="train split has no examples"):
        fit.training_budget(0, _config())


def test_count_examples_counts_plain_and_gzipped_records(tmp_path):
    for name, n, options in (("a.gz", 7, "GZIP"), ("b.gz", 5, "GZIP"), ("c.tfrecord", 3, "")):
        with tf.io.TFRecordWriter(str(tmp_path / name), options=options) as writer:
            for i in range(n):
                writer.write(b"x" * i)
    assert fit.count_examples([str(tmp_path / "*.gz")]) == 12
    assert fit.count_examples([str(tmp_path / "*")]) == 15
    with pytest.raises(FileNotFoundError, match="no training files match"):
        fit.count_examples([str(tmp_path / "missing-*")])


# ---------------------------------------------------------------------------
# Early stopping.


def _weights_as(model, value: float) -> None:
    model.set_weights([np.full_like(w, value) for w in model.get_weights()])


def test_early_stopping_stops_after_patience_and_restores_the_best_validation_weights():
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(2,))])
    stopper = callbacks.EarlyStopping({"val_a_loss": 1.0, "val_b_loss": 0.5}, patience=2, min_delta=0.01)
    stopper.set_model(model)
    stopper.on_train_begin()
    # Weighted eval loss per validation (every 10 steps): 3.0, 2.0, 1.995 (not by > min_delta), 2.5.
    for i, (a, b) in enumerate([(2.0, 2.0), (1.0, 2.0), (1.0, 1.99), (1.5, 2.0)]):
        _weights_as(model, float(i))
        for _ in range(10):
            stopper.on_train_batch_end(0)
        stopper.on_epoch_end(i, {"val_a_loss": a, "val_b_loss": b, "val_loss": 0.0})
    assert model.stop_training and stopper.stopped_early
    stopper.on_train_end()
    assert all(np.all(w == 1.0) for w in model.get_weights())  # the weights of step 20
    assert (stopper.best_step, stopper.best) == (20, 2.0)
    assert stopper.reason == ("patience exhausted at step 40 (2 validations without weighted eval loss "
                              "improving by more than 0.01); best weighted eval loss 2.00000 at step 20, "
                              "restored those weights")


def test_early_stopping_restores_the_best_weights_when_the_budget_runs_out_too():
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(2,))])
    stopper = callbacks.EarlyStopping({"val_loss": 1.0}, patience=0)
    stopper.set_model(model)
    stopper.on_train_begin()
    for i, value in enumerate([3.0, float("nan"), 1.0, 2.0]):
        _weights_as(model, float(i))
        stopper.on_train_batch_end(0)
        stopper.on_epoch_end(i, {"val_loss": value})
    assert not model.stop_training
    stopper.on_train_end()
    assert all(np.all(w == 2.0) for w in model.get_weights())
    assert stopper.reason == "step budget reached at step 4; best weighted eval loss 1.00000 at step 3, " \
                             "restored those weights"


def test_early_stopping_names_a_monitored_key_the_logs_lack():
    stopper = callbacks.EarlyStopping({"val_click_loss": 1.0})
    stopper.set_model(tf_keras.Sequential([tf_keras.layers.Dense(1)]))
    with pytest.raises(KeyError, match="val_click_loss"):
        stopper.on_epoch_end(0, {"loss": 1.0})


def test_a_fit_whose_eval_loss_turns_worse_stops_and_keeps_the_best_weights():
    """y_train = 2x, y_eval = x, w starts at 0: the eval loss falls while w < 1, then rises.

    With validation every 5 steps, training stops `patience` validations after w passed 1,
    well before the budget, with the weights of the validation whose w was nearest 1.
    """
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                                                       input_shape=(1,))])
    model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    x = np.linspace(-2, 2, 32, dtype=np.float32)[:, None]
    train = tf.data.Dataset.from_tensor_slices((x, 2 * x)).batch(8).repeat()
    evaluation = tf.data.Dataset.from_tensor_slices((x, x)).batch(32)
    stopper = callbacks.EarlyStopping({"val_loss": 1.0}, patience=2)
    budget = callbacks.StepBudget(500)
    ws: list[float] = []

    class Kernel(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ws.append(float(self.model.get_weights()[0][0, 0]))

    model.fit(train, steps_per_epoch=5, epochs=100, validation_data=evaluation, verbose=0,
              callbacks=[budget, Kernel(), stopper])
    assert stopper.stopped_early and budget.step < 500
    best = min(ws, key=lambda w: abs(w - 1.0))
    assert ws.index(best) == len(ws) - 1 - stopper.patience
    assert float(model.get_weights()[0][0, 0]) == pytest.approx(best)
    assert stopper.best_step == 5 * (ws.index(best) + 1)


def test_the_step_budget_cuts_the_last_validation_interval_short_and_still_validates():
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(1,))])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((8, 1), np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, x)).batch(4).repeat()
    stopper = callbacks.EarlyStopping({"val_loss": 1.0}, patience=0)
    history = model.fit(data, steps_per_epoch=30, epochs=3, validation_data=data, validation_steps=1,
                        verbose=0, callbacks=[callbacks.StepBudget(80), stopper])
    assert model.optimizer.iterations.numpy() == 80
    assert [step for step, _ in stopper.history] == [30, 60, 80]
    assert len(history.history["val_loss"]) == 3


def test_without_restore_best_the_last_weights_stay():
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(2,))])
    stopper = callbacks.EarlyStopping({"val_loss": 1.0}, patience=0, restore_best=False)
    stopper.set_model(model)
    stopper.on_train_begin()
    for i, value in enumerate([1.0, 2.0]):
        _weights_as(model, float(i))
        stopper.on_train_batch_end(0)
        stopper.on_epoch_end(i, {"val_loss": value})
    stopper.on_train_end()
    assert all(np.all(w == 1.0) for w in model.get_weights())
    assert stopper.reason == "step budget reached at step 2; best weighted eval loss 1.00000 at step 1"
    assert stopper.kept_weights() == "last weights, step 2: training.train_steps keeps them"
    stopper.restore_best = True
    assert stopper.kept_weights() == "best weights, step 1"
