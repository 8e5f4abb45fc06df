"""Training throughput: the Trainer's real input path vs in-memory tensors, as a share of the CPU's peak.

Three feeds of the same default model (mmoe, config sizes, batch `training.batch_size`):
- `trainer_input`: `models.fit.transformed_dataset` itself, with the DataAccessor TFX's Trainer
  builds (`tfxio_utils.get_tf_dataset_factory_from_artifact` on an Examples artifact whose
  Split-train holds the transformed TFRecords: tfx_bsl's TFExampleRecord → TFRecordDataset
  + shuffle + `parse_example_dataset`);
- `tfrecord_parse`: `tfrecord_parse` here (TFRecordDataset, shuffle, batch,
  `tf.io.parse_example`), the hand-written equivalent;
- `in_memory`: every transformed train example parsed once into tensors and cut into whole
  batches up front; the dataset hands out those ready batches in order (no I/O, no parsing,
  no shuffling, no per-example work).

Each feed trains the same model for `warmup` steps (retracing for the feed's shapes), then
`steps` timed steps; throughput counts only the timed steps (per-step timestamps from a
callback). The feeds take turns for `rounds` rounds and the median round is reported, so
a change in the machine's load during the run does not favour the feed that ran first.
The input pipeline alone (iterating the dataset without a model) is timed too,
to tell an input-bound feed from a compute-bound one.

Before/after variants (`compare_variants`): the default model with its experts as separate MLPs
(`PerExpertMLPs`, the form before `FusedExperts`) or fused, and with AUC/RMSE updated on every
training step or at evaluation only, trained on the in-memory feed at each of `variant_batches`
and served (forward pass on served inputs); all variants take turns within each round. Quality
(`quality_at_equal_epochs`): every binary head's served eval AUC after each epoch, per batch size,
the learning rate scaled by `learning_rate_for` (square root of the batch), plus the unscaled and
linearly scaled rates at the largest batch: what the default batch size and rule rest on.

FLOPs: the forward pass costs 2 × multiply-adds (`multiplications_per_example`, plus the
shallow tower, which runs in training); a training step is taken as 3 × the forward pass
(the backward pass computes two matmuls of each forward matmul's size: the gradients
with respect to the input and to the weights). tf.profiler's float-op count of one
traced gradient step is recorded beside it as a cross-check (it also counts element-wise
ops, softmax, losses and Adam's update). Peak: a float32 1024×1024 matmul probe in the
same process.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, si
from watchnext.core.config import Config
from watchnext.models import fit, layers
from watchnext.models.model import SCORE_KEY, build_model, multiplications_per_example
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import tensorflow as tf
import tf_keras

NAME = "training_speed"
# The backward pass is taken as 2 × the forward pass: training FLOPs = 3 × forward FLOPs.
TRAINING_FLOPS_FACTOR = 3.0


@dataclass(frozen=True)
class Sizes:
    impressions: int
    steps: int
    warmup: int = 10
    # Each feed runs `steps` timed steps once per round; feeds alternate within a round.
    rounds: int = 3
    batch_size: int = 256
    input_only_batches: int = 200
    matmul_n: int = 1024
    matmul_seconds: float = 2.0
    sim_seed: int = 7
    # Before/after variants (per-expert vs fused experts, AUC every step vs at evaluation only),
    # trained on the in-memory feed at each of these batch sizes, `variant_steps` timed steps each.
    variant_batches: tuple[int, ...] = (256, 512, 1024)
    variant_steps: int = 40
    # Serving: forward passes of `serving_batch` served inputs (no position), per variant and round.
    serving_batch: int = 256
    serving_calls: int = 50
    # Model quality at equal epochs per batch size (learning rate by the rule in LEARNING_RATE_RULE,
    # plus the other scalings at the largest batch); 0 skips it.
    quality_epochs: int = 0
    # The input-feed comparison (the first table); off to run the variants alone.
    compare_feeds: bool = True


SIZES = {
    "smoke": Sizes(impressions=400, steps=3, warmup=2, rounds=1, batch_size=32, input_only_batches=5,
                   matmul_n=256, matmul_seconds=0.2, variant_batches=(32,), variant_steps=3,
                   serving_batch=16, serving_calls=2, quality_epochs=1),
    "quick": Sizes(impressions=10000, steps=100),
    "full": Sizes(impressions=40000, steps=500, input_only_batches=1000, matmul_seconds=5.0,
                  variant_steps=60, quality_epochs=5),
}
# The before/after variants: (experts as separate MLPs?, AUC/RMSE updated on every training step?).
VARIANTS = {
    "before (per-expert, AUC every step)": (True, True),
    "per-expert, AUC at eval only": (True, False),
    "fused, AUC every step": (False, True),
    "after (fused, AUC at eval only)": (False, False),
}


class PerExpertMLPs(tf_keras.layers.Layer):
    """The experts as they were before `FusedExperts`: n separate MLPs, outputs stacked [B, n, d].

    The reference the fused experts are measured against (same weights layout per expert as
    the old model's `expert_<i>` MLPs).
    """

    def __init__(self, num_experts: int, units: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlps = [layers.MLP(units, name=f"expert_{i}") for i in range(num_experts)]

    @layers.no_autograph
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.stack([mlp(x) for mlp in self.mlps], axis=1)

    def output_dim(self, input_dim: int) -> int:
        return self.mlps[0].output_dim(input_dim)

    def multiplications(self, input_dim: int) -> int:
        return len(self.mlps) * self.mlps[0].multiplications(input_dim)


def variant_model(config: Config, vocab: dict[str, int], per_expert: bool, metrics_every_step: bool,
                  learning_rate: float) -> Any:
    """The default model, compiled, optionally with per-expert MLPs and AUC/RMSE on every step."""
    tf_keras.utils.set_random_seed(0)
    model = build_model(config, vocab)
    if per_expert:
        if not isinstance(model.mixing, layers.MMoE | layers.OMoE):
            raise ValueError(f"the per-expert variant needs mmoe or omoe, not {config.model.architecture}")
        model.mixing.experts = PerExpertMLPs(config.model.num_experts, config.model.expert_units,
                                             name="experts")
    model.metrics_in_training = metrics_every_step
    return fit.compile_model(model, with_learning_rate(config, learning_rate))


def with_learning_rate(config: Config, learning_rate: float) -> Config:
    """`config` with `training.learning_rate` replaced (validated)."""
    return config.replace(training=dataclasses.replace(config.training, learning_rate=learning_rate))


def serving_rate(model: Any, inputs: dict[str, np.ndarray], batch: int, calls: int) -> float:
    """Examples/s of the model's forward pass (training=False) on served inputs, in a tf.function."""
    features = {k: tf.constant(v[:batch]) for k, v in inputs.items()}
    forward = tf.function(lambda f: model(f, training=False), autograph=False)
    forward(features)
    t0 = time.perf_counter()
    for _ in range(calls):
        out = forward(features)
    float(out[SCORE_KEY][0])  # wait for the last call
    return calls * batch / (time.perf_counter() - t0)


def compare_variants(sim: datasets.FeaturizedSimulation, config: Config, sizes: Sizes
                     ) -> dict[str, dict[str, Any]]:
    """Training examples/s (in-memory feed) per variant and batch, and serving examples/s per variant.

    Every model is built and traced first; then, round after round, each (batch, variant)
    trains `variant_steps` timed steps and serves `serving_calls` batches in turn, so load
    changes on the shared machine hit every variant alike. Medians over the rounds.
    """
    vocab = sim.vocab_sizes()
    served = sim.eval_features(position=False)
    feeds = {b: in_memory(sim, b)[0] for b in sizes.variant_batches}
    models = {(b, name): variant_model(config, vocab, *flags, learning_rate=learning_rate_for(config, b))
              for b in sizes.variant_batches for name, flags in VARIANTS.items()}
    for (b, _), model in models.items():
        fit.fit(model, feeds[b], sizes.warmup, watch=False)  # trace and warm up
    train: dict[tuple[int, str], list[float]] = {key: [] for key in models}
    serve: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(sizes.rounds):
        for (b, name), model in models.items():
            timer = StepTimes()
            fit.fit(model, feeds[b], sizes.variant_steps + 1, watch=False, callbacks=[timer])
            train[(b, name)].append(sizes.variant_steps * b / (timer.times[-1] - timer.times[0]))
            if b == sizes.variant_batches[0]:
                serve[name].append(serving_rate(model, served, sizes.serving_batch, sizes.serving_calls))
    return {name: {"training_examples_per_second": {b: float(np.median(train[(b, name)]))
                                                    for b in sizes.variant_batches},
                   "training_by_round": {b: train[(b, name)] for b in sizes.variant_batches},
                   "serving_examples_per_second": float(np.median(serve[name])),
                   "serving_by_round": serve[name]}
            for name in VARIANTS}


def paired_ratios(sim: datasets.FeaturizedSimulation, config: Config, batch: int, pairs: int, steps: int,
                  serving_calls: int) -> dict[str, Any]:
    """after/before throughput ratios from adjacent, alternating chunks (before, after, before, ...).

    Under a fluctuating load the rounds of `compare_variants` vary 2-3×; a ratio of two chunks
    run back to back shares most of the load, so the median of `pairs` such ratios is the
    steadier figure. Training: `steps` steps of `batch` per chunk; serving: `serving_calls`
    forward passes of 256 served inputs per chunk.
    """
    vocab = sim.vocab_sizes()
    served = sim.eval_features(position=False)
    feed = in_memory(sim, batch)[0]
    names = list(VARIANTS)
    lr = learning_rate_for(config, batch)
    models = {name: variant_model(config, vocab, *VARIANTS[name], learning_rate=lr)
              for name in (names[0], names[-1])}
    for model in models.values():
        fit.fit(model, feed, 3, watch=False)
    train, serve = [], []
    for i in range(pairs):
        rate: dict[str, tuple[float, float]] = {}
        order = list(models) if i % 2 == 0 else list(reversed(models))  # alternate who goes first
        for name in order:
            timer = StepTimes()
            fit.fit(models[name], feed, steps + 1, watch=False, callbacks=[timer])
            rate[name] = (steps * batch / (timer.times[-1] - timer.times[0]),
                          serving_rate(models[name], served, 256, serving_calls))
        train.append(rate[names[-1]][0] / rate[names[0]][0])
        serve.append(rate[names[-1]][1] / rate[names[0]][1])
    return {"batch": batch, "pairs": pairs, "steps": steps,
            "training_ratio_median": float(np.median(train)), "training_ratios": train,
            "serving_ratio_median": float(np.median(serve)), "serving_ratios": serve}


def learning_rate_for(config: Config, batch_size: int) -> float:
    """`training.learning_rate` scaled to `batch_size` by LEARNING_RATE_RULE (square root)."""
    return config.training.learning_rate * math.sqrt(batch_size / config.training.batch_size)


LEARNING_RATE_RULE = ("square-root scaling: lr(b) = training.learning_rate × sqrt(b / training.batch_size) "
                      "(Adam's update is ~ lr per step whatever the gradient's scale; a b-times larger batch "
                      "cuts the gradient noise by sqrt(b))")


class EpochScores(tf_keras.callbacks.Callback):
    """Every binary head's eval AUC on served inputs after each epoch."""

    def __init__(self, sim: datasets.FeaturizedSimulation, served: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.sim, self.served = sim, served
        self.by_epoch: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        scores = oracle_scores.score_heads(self.sim, oracle_scores.predict(self.model, self.served))
        self.by_epoch.append({h.head: h.auc for h in scores})


def quality_at_equal_epochs(sim: datasets.FeaturizedSimulation, config: Config, sizes: Sizes
                            ) -> list[dict[str, Any]]:
    """Eval AUC of every binary head (served inputs) after each of `quality_epochs` epochs, per
    batch size and learning rate: each batch at the square-root rule, the largest batch also at
    the unscaled and at the linearly scaled learning rate. Trained through models/fit.py as
    `datasets.train_model` trains; one epoch = ⌈train examples / batch⌉ steps."""
    served = sim.eval_features(position=False)
    examples = sim.counts["train_examples"]
    largest, base = max(sizes.variant_batches), config.training.learning_rate
    runs = [(b, "sqrt", learning_rate_for(config, b)) for b in sizes.variant_batches]
    runs += [(largest, "same", base), (largest, "linear", base * largest / config.training.batch_size)]
    rows = []
    for batch, rule, lr in dict.fromkeys(runs):
        t = config.training
        tf_keras.utils.set_random_seed(t.seed)
        train = sim.train_dataset(batch, t.seed)
        model = fit.new_model(with_learning_rate(config, lr), sim.vocab_sizes(), train)
        score = EpochScores(sim, served)
        per_epoch = math.ceil(examples / batch)
        fitted = fit.fit(model, train, per_epoch * sizes.quality_epochs, validation_interval=per_epoch,
                         callbacks=[score])
        by_epoch = score.by_epoch
        rows.append({"batch": batch, "rule": rule, "learning_rate": lr, "steps_per_epoch": per_epoch,
                     "epochs": sizes.quality_epochs, "seconds": fitted.seconds,
                     "auc_by_epoch": by_epoch, "auc": by_epoch[-1]})
    return rows


class StepTimes(tf_keras.callbacks.Callback):
    """perf_counter() at the end of every training step."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter())


def examples_per_second(times: Sequence[float], warmup: int, steps: int, batch: int) -> float:
    """Examples/s over the last `steps` steps of per-step end times (the first `warmup` not counted)."""
    if warmup < 1 or len(times) != warmup + steps:
        raise ValueError(f"expected {warmup} + {steps} step times (warmup >= 1), got {len(times)}")
    timed = times[warmup - 1:]
    return steps * batch / (timed[-1] - timed[0])


def trainer_input(sim: datasets.FeaturizedSimulation, work_dir: str, batch_size: int, seed: int
                  ) -> tf.data.Dataset:
    """`models.fit.transformed_dataset` fed the way TFX's Trainer feeds it (see the module docstring)."""
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import examples_utils, tfxio_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    uri = os.path.join(work_dir, "transformed_examples")
    split_dir = os.path.join(uri, "Split-train")
    os.makedirs(split_dir, exist_ok=True)
    for i, path in enumerate(sim.train_files):
        # Transform names its gzipped shards *.gz; tfx_bsl picks GZIP from the suffix.
        link = os.path.join(split_dir, f"transformed_examples-{i:05d}-of-{len(sim.train_files):05d}.gz")
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(path), link)
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(["train"])
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    accessor = DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], ["Trainer"]),
        record_batch_factory=None, data_view_decode_fn=None)
    files = [io_utils.all_files_pattern(uri) for uri in artifact_utils.get_split_uris([examples], "train")]
    schema = sim.tf_transform_output().transformed_metadata.schema
    return fit.transformed_dataset(files, schema, batch_size, seed, factory=accessor.tf_dataset_factory)


def tfrecord_parse(sim: datasets.FeaturizedSimulation, batch_size: int, seed: int) -> tf.data.Dataset:
    """The train split through a hand-built tf.data pipeline: TFRecords, shuffle, batch, parse."""
    spec = sim.tf_transform_output().transformed_feature_spec()
    return (tf.data.TFRecordDataset(sim.train_files, compression_type="GZIP")
            .repeat()
            .shuffle(20000, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=True)
            .map(lambda x: tf.io.parse_example(x, spec), num_parallel_calls=1)
            .prefetch(2))


def in_memory(sim: datasets.FeaturizedSimulation, batch_size: int) -> tuple[tf.data.Dataset, int]:
    """All transformed train examples as tensors cut into whole batches up front; and how many there are.

    Each dataset element is one ready batch (a slice of a [batches, batch_size, ...] tensor), so
    the feed does no per-example work at all: the closest tf.data gets to handing fit tensors.
    """
    spec = sim.tf_transform_output().transformed_feature_spec()
    parts = [tf.io.parse_example(records, spec)
             for records in tf.data.TFRecordDataset(sim.train_files, compression_type="GZIP").batch(4096)]
    tensors = {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}
    n = int(next(iter(tensors.values())).shape[0])
    batches = n // batch_size
    if batches < 1:
        raise ValueError(f"training_speed: {n} train examples do not fill one batch of {batch_size}; "
                         "raise --impressions or lower --batch-size")
    stacked = {k: tf.reshape(v[:batches * batch_size], [batches, batch_size, *v.shape[1:]])
               for k, v in tensors.items()}
    return tf.data.Dataset.from_tensor_slices(stacked).repeat().prefetch(2), n


def input_only_rate(dataset: tf.data.Dataset, batches: int, batch_size: int) -> float:
    """Examples/s of iterating the dataset alone (after its first batch)."""
    it = iter(dataset)
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - t0)


def profiled_flops(model: Any, batch: dict[str, tf.Tensor]) -> dict[str, Any]:
    """tf.profiler's float-op count of one gradient step (loss + gradients) and of one forward pass."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    spec = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()}

    @tf.function
    def gradient_step(features: dict[str, tf.Tensor]) -> Any:
        with tf.GradientTape() as tape:
            loss = model.compute_loss(features, training=True)
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def forward(features: dict[str, tf.Tensor]) -> Any:
        return model(features, training=False)

    batch_size = int(next(iter(batch.values())).shape[0])
    out: dict[str, Any] = {}
    options = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation()
                                                  ).with_empty_output().build()
    for key, fn in (("gradient_step", gradient_step), ("forward", forward)):
        try:
            graph = fn.get_concrete_function(spec).graph
            total = model_analyzer.profile(graph, options=options).total_float_ops
            out[f"{key}_flops_per_example"] = total / batch_size
        except Exception as e:  # the profiler is best effort; the analytic count stands alone
            out[f"{key}_error"] = f"{type(e).__name__}: {e}"
    return out


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    config = Config()
    sim = context.simulation(sizes.impressions, sizes.sim_seed, config)
    result = run_feeds(context, sizes, config, sim) if sizes.compare_feeds else BenchmarkResult(
        name=NAME, title="Training speed: fused experts and eval-only metrics, by batch size",
        parameters={**sizes.__dict__, "architecture": config.model.architecture}, figures={}, tables=[],
        plots=[], notes=[])
    if sizes.variant_batches:
        add_variants(result, sim, config, sizes)
    return result


def add_variants(result: BenchmarkResult, sim: datasets.FeaturizedSimulation, config: Config,
                 sizes: Sizes) -> None:
    """The before/after comparison and the quality per batch size, added to `result`."""
    tf_keras.backend.clear_session()
    variants = compare_variants(sim, config, sizes)
    result.figures["variants"] = variants
    result.figures["learning_rate_rule"] = LEARNING_RATE_RULE
    names = list(VARIANTS)
    before, after = names[0], names[-1]
    table = Table(f"Training examples/s by variant and batch (in-memory feed, median of {sizes.rounds} "
                  f"interleaved round(s) of {sizes.variant_steps} steps), and serving examples/s "
                  f"(forward pass, batch {sizes.serving_batch})",
                  ["variant", *[f"train b={b}" for b in sizes.variant_batches], "serving"])
    batches = sizes.variant_batches
    for name, v in variants.items():
        table.rows.append([name, *[f"{v['training_examples_per_second'][b]:,.0f}" for b in batches],
                           f"{v['serving_examples_per_second']:,.0f}"])
    train_before, train_after = (variants[k]["training_examples_per_second"] for k in (before, after))
    serve_before, serve_after = (variants[k]["serving_examples_per_second"] for k in (before, after))
    serve_ratio = serve_after / serve_before
    table.rows.append(["after / before", *[f"{train_after[b] / train_before[b]:.2f}×" for b in batches],
                       f"{serve_ratio:.2f}×"])
    result.tables.append(table)
    if sizes.quality_epochs:
        quality = quality_at_equal_epochs(sim, config, sizes)
        result.figures["quality_at_equal_epochs"] = quality
        heads = list(quality[0]["auc"])
        result.tables.append(Table(
            "Eval AUC (served inputs) after each epoch, per batch size and learning rate",
            ["batch", "learning-rate rule", "learning rate", "steps/epoch", "train s (under load)", "epoch",
             *heads],
            [[str(q["batch"]), q["rule"], f"{q['learning_rate']:.4g}", str(q["steps_per_epoch"]),
              f"{q['seconds']:.0f}", str(e + 1), *[f"{auc[h]:.4f}" for h in heads]]
             for q in quality for e, auc in enumerate(q["auc_by_epoch"])]))
    result.notes.append(f"Learning rate per batch: {LEARNING_RATE_RULE}.")


def run_feeds(context: common.Context, sizes: Sizes, config: Config,
              sim: datasets.FeaturizedSimulation) -> BenchmarkResult:
    """The input-feed comparison: the Trainer's real input path vs in-memory tensors."""
    vocab = sim.vocab_sizes()
    served_macs = multiplications_per_example(config, vocab)

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    model = fit.compile_model(build_model(config, vocab), config)
    memory_dataset, n_train = in_memory(sim, sizes.batch_size)
    feeds = {
        "trainer_input": trainer_input(sim, context.work_dir, sizes.batch_size, 0),
        "tfrecord_parse": tfrecord_parse(sim, sizes.batch_size, 0),
        "in_memory": memory_dataset,
    }
    first_batch = next(iter(memory_dataset))
    shallow_macs = model.shallow_tower.multiplications() if model.shallow_tower is not None else 0
    training_macs = served_macs + shallow_macs
    analytic_flops = TRAINING_FLOPS_FACTOR * 2.0 * training_macs
    # The first fit traces train_step (tens of seconds); it is not part of any feed's figure.
    t0 = time.perf_counter()
    fit.fit(model, memory_dataset, 1, watch=False)
    trace_seconds = time.perf_counter() - t0

    # Feeds take turns, round after round, so a change in the machine's load hits all of them alike.
    rates: dict[str, list[float]] = {name: [] for name in feeds}
    step_seconds: dict[str, list[float]] = {name: [] for name in feeds}
    for _ in range(sizes.rounds):
        for name, dataset in feeds.items():
            timer = StepTimes()
            fit.fit(model, dataset, sizes.warmup + sizes.steps, watch=False, callbacks=[timer])
            step_seconds[name] += np.diff(timer.times[sizes.warmup - 1:]).tolist()
            rates[name].append(examples_per_second(timer.times, sizes.warmup, sizes.steps, sizes.batch_size))
    results: dict[str, dict[str, Any]] = {}
    for name, dataset in feeds.items():
        rate = float(np.median(rates[name]))
        results[name] = {
            "examples_per_second": rate,
            "examples_per_second_by_round": rates[name],
            "steps_per_second": rate / sizes.batch_size,
            "step_ms_p50": float(np.percentile(step_seconds[name], 50) * 1e3),
            "step_ms_p90": float(np.percentile(step_seconds[name], 90) * 1e3),
            "input_only_examples_per_second": input_only_rate(dataset, sizes.input_only_batches,
                                                              sizes.batch_size),
            "model_flops_per_second": rate * analytic_flops,
        }

    peak = common.matmul_peak(sizes.matmul_n, sizes.matmul_seconds)
    for r in results.values():
        r["utilization"] = r["model_flops_per_second"] / peak["flops_best"]
    profiled = profiled_flops(model, dict(first_batch))

    table = Table("Training throughput by input feed (default mmoe, batch "
                  f"{sizes.batch_size}; median of {sizes.rounds} round(s) of {sizes.steps} timed steps)",
                  ["feed", "examples/s", "step p50 ms", "step p90 ms", "input alone, examples/s",
                   "model FLOP/s", "utilization of matmul peak"])
    for name, r in results.items():
        table.rows.append([name, f"{r['examples_per_second']:,.0f}", f"{r['step_ms_p50']:.1f}",
                           f"{r['step_ms_p90']:.1f}", f"{r['input_only_examples_per_second']:,.0f}",
                           si(r["model_flops_per_second"], "FLOP/s"), f"{100 * r['utilization']:.3f} %"])
    flops_table = Table("FLOPs per example", ["count", "value"], [
        ["served forward multiply-adds (`multiplications_per_example`)", f"{served_macs:,}"],
        ["+ shallow tower (runs in training)", f"{shallow_macs:,}"],
        [f"training FLOPs = {TRAINING_FLOPS_FACTOR:g} × 2 × multiply-adds (assumed backward = 2 × forward)",
         f"{analytic_flops:,.0f}"],
        ["tf.profiler: one gradient step (loss + gradients, no optimizer update)",
         _profiled_cell(profiled, "gradient_step")],
        ["tf.profiler: one forward pass (served outputs, position present)",
         _profiled_cell(profiled, "forward")],
        [f"matmul probe peak ({peak['n']}×{peak['n']} float32, best of 3)", si(peak["flops_best"], "FLOP/s")],
    ])
    notes = [
        f"Data: {sizes.impressions} simulated impressions ({n_train} transformed train examples); the "
        "shuffle buffers of the file feeds refill from disk, the in-memory feed cycles through "
        "pre-cut batches in order.",
        "On 2 shared cores the input pipeline's threads compete with the training step for the same "
        "cores, so a feed's cost shows up in the training rate even when it alone runs faster than "
        "training.",
        f"The first fit (tracing train_step) took {trace_seconds:.1f} s and is excluded; each feed then "
        f"runs {sizes.warmup} warm-up steps (a retrace when its shapes differ) before the timed steps.",
        "Utilization uses the analytic training FLOPs; the model's matmuls are tiny (batch × 64 × 32), so "
        "most of a step is op dispatch, embedding gathers and the optimizer, not matmul arithmetic.",
    ]

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        names = list(results)
        x = np.arange(len(names))
        ax.bar(x - 0.2, [results[n]["examples_per_second"] for n in names], 0.4, label="training")
        ax.bar(x + 0.2, [results[n]["input_only_examples_per_second"] for n in names], 0.4,
               label="input pipeline alone")
        ax.set_xticks(x, names)
        ax.set_yscale("log")
        ax.set_ylabel("examples / s")
        ax.set_title("Training throughput by feed (default mmoe)")
        ax.legend()

    return BenchmarkResult(
        name=NAME,
        title="Training speed: the Trainer's input path vs in-memory tensors, and FLOP utilization",
        parameters={**sizes.__dict__, "architecture": config.model.architecture,
                    "training_flops_factor": TRAINING_FLOPS_FACTOR},
        figures={"feeds": results, "served_multiply_adds": served_macs,
                 "shallow_tower_multiply_adds": shallow_macs,
                 "training_flops_per_example": analytic_flops, "profiler": profiled, "matmul_peak": peak,
                 "trace_seconds": trace_seconds, "train_examples": n_train,
                 "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                             "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}},
        tables=[table, flops_table],
        plots=[Plot("feeds", "Training examples/s per feed, and the input pipeline alone (log scale)", draw)],
        notes=notes,
    )


def _profiled_cell(profiled: dict[str, Any], key: str) -> str:
    if f"{key}_flops_per_example" in profiled:
        return f"{profiled[f'{key}_flops_per_example']:,.0f}"
    return f"not counted ({profiled.get(f'{key}_error', 'unknown')})"

