"""The one way watchnext fits its model: the Trainer's run_fn, the Tuner's trials, the simulator's
in-process evaluation and the benchmarks all read, build, compile and fit through here.

    transformed_dataset   transformed tf.Examples → batches (TFXIO, as TFX's DataAccessor reads them)
    training_budget       examples → steps: ⌈examples / batch⌉ · epochs, or training.train_steps
    new_model             seeded build, towers at the label priors, Adam at training.learning_rate
    fit_arguments / fit   the Keras epochs are validation intervals; StepBudget ends the last one
                          on time, ProgressLogger logs and stops on a non-finite loss, early
                          stopping (callbacks.EarlyStopping) keeps the best weights
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.models import features
from watchnext.models.callbacks import ProgressLogger, StepBudget
from watchnext.models.distribution import with_input_sharding
from watchnext.models.heads import label_priors
from watchnext.models.model import WatchNextModel, build_model

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx_bsl.public import tfxio

# (file patterns, options, schema) → dataset: TFX's DataAccessor.tf_dataset_factory, or TFXIO's
# TFExampleRecord (what that factory builds for tf.Example payloads) outside TFX.
DatasetFactory = Callable[[list[str], tfxio.TensorFlowDatasetOptions, Any], tf.data.Dataset]


def _tf_example_factory(file_pattern: list[str], options: tfxio.TensorFlowDatasetOptions,
                        schema: Any) -> tf.data.Dataset:
    return tfxio.TFExampleRecord(file_pattern, ["watchnext"], schema=schema).TensorFlowDataset(options)


def transformed_dataset(file_pattern: list[str], schema: Any, batch_size: int, seed: int, repeat: bool = True,
                        factory: DatasetFactory | None = None) -> tf.data.Dataset:
    """Shuffled batches of transformed features and labels, as one dict; repeated forever unless
    `repeat` is False. `factory`: the Trainer's DataAccessor.tf_dataset_factory (it knows the
    artifact's payload format); by default TFXIO's tf.Example reader, which is what it builds."""
    dataset = (factory or _tf_example_factory)(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle_seed=seed,
                                       num_epochs=None if repeat else 1),
        schema,
    )
    dataset = dataset.repeat() if repeat else dataset
    # In a TF_CONFIG cluster: each worker reads its shard (by file when there is one per worker).
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


def early_stopping_weights(config: Config) -> dict[str, float]:
    """{validation log key: weight} of the quantity early stopping minimizes: the weighted total
    eval loss Σ_k loss_weight_k · L_k, each L_k the head's loss averaged over the eval batches.

    It is the objective training minimizes, over every head (regression heads too), with the
    weights the config gives them: an AUC would ignore the regression heads and calibration,
    one head's loss the other heads. (Keras' "val_loss" of a tfrs model is only the last eval
    batch's loss, hence the per-head Means.)
    """
    return {f"val_{h.name}_loss": h.loss_weight for h in config.heads}


@dataclass(frozen=True)
class TrainingInputs:
    """What a fit in TFX reads: Transform's output, the train and validation batches, the vocabularies."""

    tf_transform_output: Any
    train: tf.data.Dataset  # repeated forever
    validation: tf.data.Dataset  # the same batches at every validation (see training_inputs)
    validation_steps: int | None  # None: the whole (finite) eval split
    vocab_sizes: dict[str, int]


def training_inputs(fn_args: Any, transform_dir: str, config: Config) -> TrainingInputs:
    """The inputs of the Trainer's run_fn and the Tuner's trials, from their FnArgs alike.

    Validation reads the same eval batches every time: with `eval_steps` > 0 the first
    eval_steps batches, cached (Keras would otherwise read the next ones from the repeated
    dataset at each validation, and early stopping would compare losses on different
    examples); with eval_steps 0 (TFX's EvalArgs without num_steps) one whole pass over
    the eval split, re-read at each validation.
    """
    tf_transform_output = tft.TFTransformOutput(transform_dir)
    schema = tf_transform_output.transformed_metadata.schema
    t = config.training

    def read(files: list[str], repeat: bool) -> tf.data.Dataset:
        return transformed_dataset(files, schema, t.batch_size, t.seed, repeat,
                                   fn_args.data_accessor.tf_dataset_factory)

    train = read(fn_args.train_files, repeat=True)
    validation = (read(fn_args.eval_files, repeat=True).take(fn_args.eval_steps).cache() if fn_args.eval_steps
                  else read(fn_args.eval_files, repeat=False))
    return TrainingInputs(tf_transform_output, train, validation, fn_args.eval_steps or None,
                          features.vocab_sizes(tf_transform_output, config))


def compile_model(model: WatchNextModel, config: Config, run_eagerly: bool = False) -> WatchNextModel:
    """`model` compiled with Adam at `training.learning_rate` (the loss is the model's own)."""
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=config.training.learning_rate),
                  run_eagerly=run_eagerly)
    return model


def new_model(config: Config, vocab_sizes: Mapping[str, int], train: tf.data.Dataset,
              run_eagerly: bool = False) -> WatchNextModel:
    """`build_model` with its towers at the label priors of `train`'s first batches, compiled.

    Seed first (`tf_keras.utils.set_random_seed`), then make `train`, then call this: the
    shuffle and the initial weights both draw from the seed, in that order.
    """
    return compile_model(build_model(config, vocab_sizes, label_priors(config, train)), config, run_eagerly)


def fit_arguments(total_steps: int, validation_interval: int = 0, validation: tf.data.Dataset | None = None,
                  validation_steps: int | None = None, callbacks: Sequence[tf_keras.callbacks.Callback] = (),
                  watch: bool = True) -> dict[str, Any]:
    """`model.fit`'s keyword arguments for `total_steps` steps, validating every
    `validation_interval` steps (0: once, at the end) on `validation_steps` batches of
    `validation` (None: all of it), with `callbacks` after the budget's own.

    Keras "epochs" are validation intervals; StepBudget ends the last one on time, and
    `watch` adds ProgressLogger (logs about ten times, raises TrainingDiverged on a
    non-finite loss). Timing benchmarks pass watch=False: a per-batch Python callback
    makes Keras fetch the logs after every step.
    """
    interval = min(validation_interval or total_steps, total_steps)
    own: list[tf_keras.callbacks.Callback] = [ProgressLogger(total_steps)] if watch else []
    return {"steps_per_epoch": interval, "epochs": math.ceil(total_steps / interval),
            "validation_data": validation, "validation_steps": validation_steps, "verbose": 0,
            "callbacks": [*own, StepBudget(total_steps), *callbacks]}


@dataclass(frozen=True)
class Fitted:
    """What a fit cost: wall seconds, and the last training loss Keras logged (NaN if none)."""

    history: dict[str, list[float]]
    seconds: float

    @property
    def final_loss(self) -> float:
        losses = self.history.get("loss")
        return float(losses[-1]) if losses else float("nan")


def fit(model: WatchNextModel, train: tf.data.Dataset, total_steps: int, **arguments: Any) -> Fitted:
    """`model.fit(train, **fit_arguments(total_steps, **arguments))`, timed."""
    start = time.perf_counter()
    history = model.fit(train, **fit_arguments(total_steps, **arguments))
    return Fitted(history.history, time.perf_counter() - start)
