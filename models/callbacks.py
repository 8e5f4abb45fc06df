"""The training callbacks every fit uses (models/fit.py): progress and divergence, the step
budget across validation intervals, early stopping with the best weights."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

import tf_keras

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; nothing is exported."""


class ProgressLogger(tf_keras.callbacks.Callback):
    """Logs the loss and each head's loss about ten times per run, with steps/s and an ETA.

    Counts steps across Keras epochs (run_fn's "epochs" are validation intervals), and
    stops the run with `TrainingDiverged` as soon as the training loss is not finite.
    """

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total = total_steps
        self.every = max(1, total_steps // 10)
        self.start = 0.0
        self.step = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.time()
        self.step = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        step = self.step
        logs = logs or {}
        loss = logs.get("loss", float("nan"))
        if not math.isfinite(loss):
            self.model.stop_training = True
            raise TrainingDiverged(f"training loss is {loss} at step {step}/{self.total}; "
                                   "no model exported (lower training.learning_rate or check labels)")
        if step % self.every == 0 or step == self.total:
            elapsed = time.time() - self.start
            rate = step / elapsed if elapsed > 0 else float("inf")
            heads = {k: round(float(v), 4) for k, v in logs.items()
                     if k.endswith("_loss") and k not in _AGGREGATE_LOSSES}
            log.info("step %d/%d  loss %.4f %s  %.1f steps/s  ETA %.0fs",
                     step, self.total, loss, heads, rate, (self.total - step) / rate)


# Keys of the training logs that are not one head's loss.
_AGGREGATE_LOSSES = ("loss", "regularization_loss", "total_loss")


class StepBudget(tf_keras.callbacks.Callback):
    """Ends training after exactly `total_steps` steps, counted across Keras epochs.

    run_fn's Keras "epochs" are validation intervals of a fixed number of steps, so the
    budget need not be a multiple of them: the last interval is cut short here, and Keras
    still validates after it (fit validates after a batch that set stop_training).
    """

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total = total_steps
        self.step = 0
        # It reads no logs: Keras need not copy them to numpy after every step for it.
        self._supports_tf_logs = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.step = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step >= self.total:
            self.model.stop_training = True


class EarlyStopping(tf_keras.callbacks.Callback):
    """Stops when the monitored validation quantity m = Σ_key weight_key · logs[key] (lower is
    better) has not improved for `patience` validations in a row, and leaves the model with
    the weights of its best validation.

    Improvement means m < best − min_delta. The best weights are restored whether training
    stopped early or ran out of budget, so the exported model is the one that scored best
    on the eval batches. patience 0 never stops early. A non-finite m never counts as an
    improvement. `reason` says why training ended, with the steps.
    """

    def __init__(self, weights: Mapping[str, float], patience: int = 3, min_delta: float = 0.0,
                 monitor: str = "weighted eval loss", restore_best: bool = True) -> None:
        super().__init__()
        self.weights = dict(weights)
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self.reset()

    def kept_weights(self) -> str:
        """Which weights the model holds after training, for the log: the best or the last."""
        if self.restore_best:
            return f"best weights, step {self.best_step}"
        return f"last weights, step {self.step}: training.train_steps keeps them"

    def reset(self) -> None:
        self.step = 0
        self.wait = 0
        self.best = math.inf
        self.best_step = 0
        self.best_weights: list[Any] | None = None
        self.history: list[tuple[int, float]] = []  # (step, monitored value) per validation
        self.stopped_early = False
        self.reason = ""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.reset()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        missing = sorted(set(self.weights) - set(logs))
        if missing:
            raise KeyError(f"early stopping monitors {missing}, which the validation logs lack "
                           f"(they have {sorted(logs)}); is there validation data?")
        value = sum(w * float(logs[key]) for key, w in self.weights.items())
        self.history.append((self.step, value))
        if math.isfinite(value) and value < self.best - self.min_delta:
            self.best, self.best_step, self.wait = value, self.step, 0
            self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        # A validation right after the step budget ran out is the last one anyway: say "budget".
        if self.patience and self.wait >= self.patience and not self.model.stop_training:
            self.stopped_early = True
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is None:
            self.reason = f"stopped at step {self.step} with no finite {self.monitor}; kept the last weights"
            return
        if self.stopped_early:
            why = (f"patience exhausted at step {self.step} ({self.patience} validations without "
                   f"{self.monitor} improving by more than {self.min_delta:g})")
        else:
            why = f"step budget reached at step {self.step}"
        restored = ""
        if self.best_step != self.step and self.restore_best:
            self.model.set_weights(self.best_weights)
            restored = ", restored those weights"
        self.reason = f"{why}; best {self.monitor} {self.best:.5f} at step {self.best_step}{restored}"
