"""What the benchmarks share: simulated data (cached), in-process training, scoring, a matmul probe.

Training here is the Trainer's fit without the orchestration: models/fit.py on
`FeaturizedSimulation.train_dataset` (transformed train examples from the real
preprocessing_fn, read as the Trainer reads them). Only the sizes differ from the pipeline,
and each benchmark records them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.models import fit
from watchnext.models.callbacks import EarlyStopping
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import tensorflow as tf
import tf_keras

log = logging.getLogger("watchnext.benchmarks")


@dataclass(frozen=True)
class TrainingSizes:
    """The sizes every model-quality benchmark has: data, training and seeds.

    Each benchmark's `Sizes` extends it with what it varies (architectures, position modes,
    gate dropouts, correlations).
    """

    impressions: int
    steps: int
    seeds: int
    batch_size: int = 256
    sim_seed: int = 7
    run_eagerly: bool = False


@dataclass
class Context:
    """Where a benchmark keeps its scratch data; featurized simulations are reused by parameters.

    A simulation is keyed by (impressions, seed, simulator overrides, config); with a
    persistent `work_dir` a second run with the same key loads it instead of running
    Beam again (it is pickled next to its files).
    """

    work_dir: str
    # Input data named by `watchnext bench --data` (benchmarks that read a data set; "" = their default).
    data_path: str = ""
    _memo: dict[str, datasets.FeaturizedSimulation] = dataclasses.field(default_factory=dict)

    def simulation(self, impressions: int, seed: int, config: Config | None = None,
                   **simulator_overrides: Any) -> datasets.FeaturizedSimulation:
        """A featurized simulated day (see pipeline/datasets.py), from cache when possible."""
        config = config or Config()
        key_text = json.dumps({"impressions": impressions, "seed": seed, "overrides": simulator_overrides,
                               "config": config.to_json()}, sort_keys=True, default=list)
        key = hashlib.sha256(key_text.encode()).hexdigest()[:12]
        if key in self._memo:
            return self._memo[key]
        sim_dir = os.path.join(self.work_dir, f"sim-{key}")
        cached = os.path.join(sim_dir, "simulation.pkl")
        sim = None
        if os.path.exists(cached):
            try:
                with open(cached, "rb") as f:
                    sim = pickle.load(f)
                log.info("reusing the featurized simulation in %s", sim_dir)
            except Exception as e:  # an older datasets.FeaturizedSimulation layout: featurize again
                log.info("cannot reuse %s (%s); featurizing again", cached, e)
                sim = None
        if sim is None or not all(os.path.exists(p) for p in sim.train_files):
            t0 = time.time()
            sim = datasets.featurized_simulation(sim_dir, impressions=impressions, seed=seed, config=config,
                                                 **simulator_overrides)
            log.info("featurized %d impressions (seed %d, %s) in %.0f s", impressions, seed,
                     simulator_overrides or "default world", time.time() - t0)
            with open(cached, "wb") as f:
                pickle.dump(sim, f)
        self._memo[key] = sim
        return sim


def with_model(config: Config, **changes: Any) -> Config:
    """`config` with fields of its `model` section replaced (validated)."""
    return config.replace(model=dataclasses.replace(config.model, **changes))


@dataclass
class Trained:
    """A model trained in-process, with what it cost."""

    model: Any
    config: Config
    steps: int
    seed: int
    batch_size: int
    seconds: float
    final_loss: float
    # Early stopping (train_converged only): the step whose weights the model holds, and why it stopped.
    best_step: int = 0
    stop_reason: str = ""


def request_halves(sim: datasets.FeaturizedSimulation) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean masks over the eval rows, (validation, test), split by request id (CRC32
    parity): early stopping watches one half and the AUCs are read on the other, so the
    stopping rule never sees the rows it is judged on, and no request straddles the two."""
    odd = np.asarray([zlib.crc32(request_id.encode()) % 2 for request_id, _ in sim.eval_keys], dtype=bool)
    return ~odd, odd


@dataclass(frozen=True)
class EvalHalves:
    """The eval split cut by request_halves, transformed once (with the logged position)."""

    validation: dict[str, np.ndarray]  # features with labels: what train_converged stops on
    test_features: dict[str, np.ndarray]  # model inputs only, the rows a benchmark may score
    test_rows: np.ndarray  # mask over the eval rows (sim.eval_labels, sim.truth)


def without_position(features: Mapping[str, np.ndarray], config: Config) -> dict[str, np.ndarray]:
    """Model inputs as serving sends them: `features` without the position key."""
    return {k: v for k, v in features.items() if k != config.features.position}


def eval_halves(sim: datasets.FeaturizedSimulation) -> EvalHalves:
    """Both halves from one pass of the eval split through the transform graph."""
    validation_rows, test_rows = request_halves(sim)
    labelled = sim.eval_features(position=True, labels=True)
    labels = set(sim.config.label_keys)
    return EvalHalves({k: v[validation_rows] for k, v in labelled.items()},
                      {k: v[test_rows] for k, v in labelled.items() if k not in labels}, test_rows)


def train_converged(sim: datasets.FeaturizedSimulation, config: Config, seed: int,
                    validation: Mapping[str, np.ndarray], run_eagerly: bool = False) -> Trained:
    """Fit as the Trainer's run_fn does: `config.training`'s epochs over every train example
    (batch, learning rate), validating once per epoch (or every validation_interval_steps) on
    `validation` (transformed features with labels), stopping after `early_stopping_patience`
    validations without improvement and restoring the best weights (models/trainer.py)."""
    t = config.training
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)
    train = sim.train_dataset(t.batch_size, seed)
    model = fit.new_model(config, sim.vocab_sizes(), train, run_eagerly=run_eagerly)
    budget = fit.training_budget(sim.counts["train_examples"], config)
    held_out = tf.data.Dataset.from_tensor_slices(dict(validation)).batch(t.batch_size).cache()
    stopper = EarlyStopping(fit.early_stopping_weights(config), t.early_stopping_patience,
                            t.early_stopping_min_delta)
    fitted = fit.fit(model, train, budget.total_steps, validation_interval=budget.validation_interval,
                     validation=held_out, callbacks=[stopper])
    log.info("trained %s, heads %s, seed %d: %s; %s; %.1f s", config.model.architecture,
             ",".join(config.head_names), seed, budget.describe(), stopper.reason, fitted.seconds)
    return Trained(model, config, stopper.step, seed, t.batch_size, fitted.seconds, fitted.final_loss,
                   stopper.best_step, stopper.reason)


def train(sim: datasets.FeaturizedSimulation, config: Config, steps: int, seed: int,
          batch_size: int | None = None, run_eagerly: bool = False) -> Trained:
    """Build the model for `config` and fit it for `steps` batches of the simulation's train split.

    Seeds the weights, the gate/position dropout and the shuffle with `seed`. `run_eagerly`
    skips tracing (~25 s for the default model on 2 loaded cores): only for a handful of steps.
    """
    batch_size = batch_size or config.training.batch_size
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)
    train = sim.train_dataset(batch_size, seed)
    model = fit.new_model(config, sim.vocab_sizes(), train, run_eagerly=run_eagerly)
    fitted = fit.fit(model, train, steps)
    log.info("trained %s (position %s) for %d steps, seed %d: %.1f s, loss %.4f",
             config.model.architecture, config.model.position_mode, steps, seed, fitted.seconds,
             fitted.final_loss)
    return Trained(model, config, steps, seed, batch_size, fitted.seconds, fitted.final_loss)


def binary_aucs(sim: datasets.FeaturizedSimulation, predictions: Mapping[str, np.ndarray],
                heads: list[str], rows: np.ndarray | None = None) -> dict[str, float]:
    """AUC of each head's prediction against its eval label; `predictions` are of the eval rows
    of the mask `rows` when it is given, of every eval row otherwise."""
    keep = slice(None) if rows is None else rows
    return {h: oracle_scores.auc(predictions[h], sim.eval_labels[sim.config.head(h).label][keep])
            for h in heads}


def oracle_aucs(sim: datasets.FeaturizedSimulation, heads: list[str], rows: np.ndarray | None = None
                ) -> dict[str, float]:
    """AUC of the simulator's true P(label = 1) on the same eval impressions (the Bayes ceiling);
    on the eval rows of the mask `rows` only when given."""
    keep = slice(None) if rows is None else rows
    return {h: oracle_scores.auc(oracle_scores.label_probability(sim.truth, sim.config.head(h).label)[keep],
                                 sim.eval_labels[sim.config.head(h).label][keep]) for h in heads}


def oracle_share(model_auc: float, oracle_auc: float) -> float:
    """(AUC − 0.5) / (AUC_oracle − 0.5): the share of the oracle's gap over chance the model closes."""
    return (model_auc - 0.5) / (oracle_auc - 0.5) if oracle_auc > 0.5 else float("nan")


def gate_weights(model: Any, inputs: Mapping[str, np.ndarray], batch_size: int = 4096
                 ) -> dict[str, np.ndarray]:
    """The model's `gate_weights` on transformed features, {task: [N, n_experts]}."""
    n = len(next(iter(inputs.values())))
    parts = []
    for start in range(0, n, batch_size):
        batch = {k: tf.constant(v[start:start + batch_size]) for k, v in inputs.items()}
        parts.append({k: v.numpy() for k, v in model.gate_weights(batch).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def matmul_peak(n: int = 1024, seconds: float = 2.0) -> dict[str, float]:
    """Float32 FLOP/s of a square n×n matmul (2n³ FLOPs) in a tf.function: the machine's practical peak.

    Repeats the matmul for about `seconds` after one warm-up call and reports the best of
    three timed rounds (under load the best round is the least disturbed one).
    """
    a = tf.random.uniform([n, n], dtype=tf.float32)
    b = tf.random.uniform([n, n], dtype=tf.float32)

    @tf.function
    def chain(a: tf.Tensor, b: tf.Tensor, repeats: tf.Tensor) -> tf.Tensor:
        acc = tf.zeros([], tf.float32)
        for _ in tf.range(repeats):
            acc += tf.reduce_sum(tf.matmul(a, b)[:1, :1])
        return acc

    chain(a, b, tf.constant(1)).numpy()
    t0 = time.perf_counter()
    chain(a, b, tf.constant(2)).numpy()
    per_call = max((time.perf_counter() - t0) / 2, 1e-6)
    repeats = max(1, int(seconds / 3 / per_call))
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        chain(a, b, tf.constant(repeats)).numpy()
        rates.append(2.0 * n**3 * repeats / (time.perf_counter() - t0))
    return {"n": n, "repeats": repeats, "flops_best": max(rates), "flops_median": float(np.median(rates)),
            "flops_rounds": rates}


def percentile_ms(seconds: list[float], q: float) -> float:
    """The q-th percentile of `seconds`, in milliseconds."""
    return float(np.percentile(np.asarray(seconds) * 1e3, q))
