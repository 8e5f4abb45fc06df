"""The Trainer's `run_fn`: read transformed examples, fit the multitask model, export it."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models import expert_utilization, features
from watchnext.models.distribution import chief_writes, strategy_from_config, with_input_sharding
from watchnext.models.export import export_model
from watchnext.models.model import build_model, label_priors
from watchnext.models.preprocessing import CONFIG_KEY
from watchnext.models.tuner import apply_hyperparameters, tuned_settings
from watchnext.models.warm_start import warm_start
from watchnext.pipeline.configs import Config

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

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


def input_dataset(file_pattern: list[str], data_accessor: tfx.components.DataAccessor,
                  schema: Any, batch_size: int, seed: int, repeat: bool = True) -> tf.data.Dataset:
    """Batches of transformed features and labels, as one dict; repeated forever unless `repeat` is False."""
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle_seed=seed,
                                       num_epochs=None if repeat else 1),
        schema,
    )
    dataset = dataset.repeat() if repeat else dataset
    return with_input_sharding(dataset, file_pattern, repeat)


def count_examples(file_patterns: list[str]) -> int:
    """Records in the TFRecord files matching `file_patterns` (gzipped when named *.gz).

    Why count the Trainer's own train files rather than read ExampleGen's recorded split
    counts: run_fn gets file patterns, not artifacts (FnArgs carries no ExampleGen or
    Transform properties), and the files are exactly what training reads, whichever
    ExampleGen wrote them (LogExampleGen, TableExampleGen, a Kubeflow run) and whatever
    Transform kept. Counting only frames records (no parsing): a few seconds per million
    examples, small next to one training pass over them.
    """
    files = sorted({f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no training files match {file_patterns}")
    total = 0
    for compression in ("GZIP", ""):
        group = [f for f in files if f.endswith(".gz") == (compression == "GZIP")]
        if group:
            records = tf.data.TFRecordDataset(group, compression_type=compression,
                                              num_parallel_reads=tf.data.AUTOTUNE)
            total += int(records.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return total


@dataclass(frozen=True)
class Budget:
    """How long run_fn trains: `total_steps`, and validates every `validation_interval` steps."""

    examples: int
    batch_size: int
    steps_per_epoch: int
    epochs: int
    total_steps: int
    validation_interval: int
    explicit: bool  # training.train_steps overrode the epochs

    def describe(self) -> str:
        passes = self.total_steps * self.batch_size / max(self.examples, 1)
        head = (f"{self.examples:,} train examples → {self.steps_per_epoch:,} steps/epoch (batch "
                f"{self.batch_size}) × {self.epochs} epochs = {self.total_steps:,} steps")
        if self.explicit:
            head = (f"{self.examples:,} train examples, batch {self.batch_size}: training.train_steps "
                    f"overrides epochs, {self.total_steps:,} steps = {passes:.2f} epochs")
        return f"{head}; validating every {self.validation_interval:,} steps"


def training_budget(examples: int, config: Config) -> Budget:
    """The step budget of `config.training` for `examples` train examples.

    steps/epoch = ⌈examples / batch_size⌉ (the last, partial batch of a pass counts as a
    step; the train dataset repeats, so it is filled from the next pass). Total: an explicit
    `train_steps`, else steps/epoch × `epochs`. Validation every `validation_interval_steps`
    (0: every epoch), never less often than once, at the end.
    """
    t = config.training
    if examples < 1:
        raise ValueError("the train split has no examples: nothing to train on (check the ExampleGen's "
                         "split counts and data.eval_percent)")
    per_epoch = math.ceil(examples / t.batch_size)
    total = t.train_steps or per_epoch * t.epochs
    interval = min(t.validation_interval_steps or per_epoch, total)
    return Budget(examples, t.batch_size, per_epoch, t.epochs, total, interval, explicit=bool(t.train_steps))


def training_inputs(fn_args: tfx.components.FnArgs, transform_dir: str,
                    config: Config) -> tuple[Any, tf.data.Dataset, tf.data.Dataset, dict[str, int]]:
    """(Transform output, train batches, eval batches, vocabulary sizes): what a fit reads.

    Shared by the Trainer's run_fn and the Tuner's trials, so both read the same data alike.
    Both datasets repeat forever.
    """
    tf_transform_output = tft.TFTransformOutput(transform_dir)
    schema = tf_transform_output.transformed_metadata.schema
    t = config.training
    train = input_dataset(fn_args.train_files, fn_args.data_accessor, schema, t.batch_size, t.seed)
    evaluation = input_dataset(fn_args.eval_files, fn_args.data_accessor, schema, t.batch_size, t.seed)
    return tf_transform_output, train, evaluation, features.vocab_sizes(tf_transform_output, config)


def validation_data(fn_args: tfx.components.FnArgs, tf_transform_output: Any, evaluation: tf.data.Dataset,
                    config: Config) -> tf.data.Dataset:
    """The eval batches every validation and the final metrics read: always the same ones.

    `eval_steps` > 0: the first eval_steps batches, cached (Keras would otherwise read the
    next ones from the repeated dataset at each validation, and early stopping would compare
    losses on different examples). eval_steps 0 (TFX's EvalArgs without num_steps): one
    whole pass over the eval split, re-read at each validation.
    """
    if fn_args.eval_steps:
        return evaluation.take(fn_args.eval_steps).cache()
    schema = tf_transform_output.transformed_metadata.schema
    return input_dataset(fn_args.eval_files, fn_args.data_accessor, schema, config.training.batch_size,
                         config.training.seed, repeat=False)


def early_stopping_weights(config: Config) -> dict[str, float]:
    """{validation log key: weight} of the quantity early stopping minimizes: the weighted total
    eval loss Σ_k loss_weight_k · L_k, each L_k the head's loss averaged over the eval batches.

    It is the objective training minimizes, over every head (regression heads too), with the
    weights the config gives them: an AUC would ignore the regression heads and calibration,
    one head's loss the other heads. (Keras' "val_loss" of a tfrs model is only the last eval
    batch's loss, hence the per-head Means.)
    """
    return {f"val_{h.name}_loss": h.loss_weight for h in config.heads}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Called by the TFX Trainer."""
    config = Config.from_json(fn_args.custom_config[CONFIG_KEY])
    # The Tuner's best values (tuning.enabled), applied the way each of its trials applied them.
    hyperparameters = getattr(fn_args, "hyperparameters", None)
    if hyperparameters:
        config = apply_hyperparameters(config, hyperparameters)
    log.info("hyperparameters (%s): %s", "from the Tuner" if hyperparameters else "from the config",
             tuned_settings(config))
    # First: MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    strategy = strategy_from_config(config)
    tf_keras.utils.set_random_seed(config.training.seed)
    tf_transform_output, train, evaluation, sizes = training_inputs(fn_args, fn_args.transform_output, config)
    log.info("vocabulary sizes: %s", sizes)
    t = config.training
    # TrainArgs.num_steps is training.train_steps (unset when 0, i.e. derive from epochs).
    if fn_args.train_steps:
        config = config.replace(training=dataclasses.replace(t, train_steps=fn_args.train_steps))
        t = config.training
    budget = training_budget(count_examples(fn_args.train_files), config)
    log.info("training budget: %s", budget.describe())
    validation = validation_data(fn_args, tf_transform_output, evaluation, config)
    eval_steps = fn_args.eval_steps or None  # None: the whole (finite) eval split
    priors = label_priors(config, train)
    log.info("output biases start at the label priors (%d batches): %s", t.prior_bias_batches,
             {k: round(v, 4) for k, v in priors.items()})
    with strategy.scope():
        model = build_model(config, sizes, priors)
        if t.warm_start and fn_args.base_model:
            model(next(iter(train)), training=False)  # create the variables before assigning them
            vocabularies = {name: tf_transform_output.vocabulary_by_name(name)
                            for name in features.vocabulary_names(config)}
            warm_start(model, fn_args.base_model, vocabularies, config)
        model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=t.learning_rate))
    # An explicit training.train_steps means exactly that many steps and the last weights; the
    # validations are still logged.
    patience = 0 if budget.explicit else t.early_stopping_patience
    stopper = EarlyStopping(early_stopping_weights(config), patience, t.early_stopping_min_delta,
                            restore_best=not budget.explicit)
    model.fit(
        train,
        # Keras "epochs" here are validation intervals; StepBudget ends the last one on time.
        steps_per_epoch=budget.validation_interval,
        epochs=math.ceil(budget.total_steps / budget.validation_interval),
        validation_data=validation,
        validation_steps=eval_steps,
        verbose=0,
        callbacks=[
            ProgressLogger(budget.total_steps),
            StepBudget(budget.total_steps),
            stopper,
            tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        ],
    )
    log.info("training stopped: %s; validation %s by step: %s", stopper.reason, stopper.monitor,
             [(step, round(v, 5)) for step, v in stopper.history])
    metrics = model.evaluate(validation, steps=eval_steps, return_dict=True, verbose=0)
    log.info("eval metrics after %d steps (best weights, step %d): %s", stopper.step, stopper.best_step,
             {k: round(float(v), 4) for k, v in metrics.items()})
    bad = {k: v for k, v in metrics.items() if not math.isfinite(float(v))}
    if bad:
        raise TrainingDiverged(f"eval metrics are not finite: {bad}; no model exported")
    # Every worker saves (a save may run collective ops); only the chief's copy is kept.
    with chief_writes(strategy, fn_args.serving_model_dir) as export_dir:
        export_model(model, tf_transform_output, config, export_dir)
    log.info("exported the serving model to %s", export_dir)
    # How the gates spread their weight on eval data; the CLI and report.md raise the alarm.
    utilization = expert_utilization.measure(model, validation, eval_steps or -1, config)
    with chief_writes(strategy, fn_args.model_run_dir) as run_dir:
        expert_utilization.write(utilization, run_dir)
    for alarm in expert_utilization.alarms(utilization):
        log.warning("%s", alarm)
