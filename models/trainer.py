"""The Trainer's `run_fn`: read transformed examples, fit the multitask model, export it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models import expert_utilization, features
from watchnext.models.distribution import strategy_from_config
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
    """Logs the loss about ten times per run, with steps/s and an ETA."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total = total_steps
        self.every = max(1, total_steps // 10)
        self.start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = batch + 1
        loss = (logs or {}).get("loss", float("nan"))
        if not math.isfinite(loss):
            self.model.stop_training = True
            raise TrainingDiverged(f"training loss is {loss} at step {step}/{self.total}; "
                                   "no model exported (lower training.learning_rate or check labels)")
        if step % self.every == 0 or step == self.total:
            elapsed = time.time() - self.start
            rate = step / elapsed if elapsed > 0 else float("inf")
            log.info("step %d/%d  loss %.4f  %.1f steps/s  ETA %.0fs",
                     step, self.total, loss, rate, (self.total - step) / rate)


def input_dataset(file_pattern: list[str], data_accessor: tfx.components.DataAccessor,
                  schema: Any, batch_size: int, seed: int) -> tf.data.Dataset:
    """Batches of transformed features and labels, as one dict, repeated forever."""
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle_seed=seed),
        schema,
    ).repeat()


def training_inputs(fn_args: tfx.components.FnArgs, transform_dir: str,
                    config: Config) -> tuple[Any, tf.data.Dataset, tf.data.Dataset, dict[str, int]]:
    """(Transform output, train batches, eval batches, vocabulary sizes): what a fit reads.

    Shared by the Trainer's run_fn and the Tuner's trials, so both read the same data alike.
    """
    tf_transform_output = tft.TFTransformOutput(transform_dir)
    schema = tf_transform_output.transformed_metadata.schema
    t = config.training
    train = input_dataset(fn_args.train_files, fn_args.data_accessor, schema, t.batch_size, t.seed)
    evaluation = input_dataset(fn_args.eval_files, fn_args.data_accessor, schema, t.batch_size, t.seed)
    return tf_transform_output, train, evaluation, features.vocab_sizes(tf_transform_output, config)


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
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        epochs=1,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        verbose=0,
        callbacks=[
            ProgressLogger(fn_args.train_steps),
            tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        ],
    )
    metrics = model.evaluate(evaluation, steps=fn_args.eval_steps, return_dict=True, verbose=0)
    log.info("eval metrics after %d steps: %s", fn_args.train_steps,
             {k: round(float(v), 4) for k, v in metrics.items()})
    bad = {k: v for k, v in metrics.items() if not math.isfinite(float(v))}
    if bad:
        raise TrainingDiverged(f"eval metrics are not finite: {bad}; no model exported")
    export_model(model, tf_transform_output, config, fn_args.serving_model_dir)
    log.info("exported the serving model to %s", fn_args.serving_model_dir)
    # How the gates spread their weight on eval data; the CLI and report.md raise the alarm.
    utilization = expert_utilization.measure(model, evaluation, fn_args.eval_steps, config)
    expert_utilization.write(utilization, fn_args.model_run_dir)
    for alarm in expert_utilization.alarms(utilization):
        log.warning("%s", alarm)
