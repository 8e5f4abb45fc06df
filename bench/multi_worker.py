"""Multi-worker training: examples/s of the Trainer's run_fn in 1 process vs a loopback cluster of 2.

Both arms run the real run_fn (models/multi_worker.py) on the same featurized simulation
with the same global batch and step budget: 1 process with the default strategy, and 2
processes (chief + worker on 127.0.0.1) with MultiWorkerMirroredStrategy. The arms are
interleaved (A, B, A, B, ...) so that the machine's load weighs on both alike.

examples/s = global steps × training.batch_size / wall seconds of model.fit (validations
included, the same in both arms); for the cluster, the slower of its two processes. On a
machine with 2 cores shared by both workers no speed-up is expected: each step adds an
all-reduce over gRPC and the two processes compete for the same cores. The point of the
loopback cluster is correctness (tests/models/test_multi_worker.py); the figures say what
the protocol costs here.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from dataclasses import dataclass

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Table
from watchnext.core.config import Config, from_dict
from watchnext.models import multi_worker as mw

NAME = "multi_worker"


@dataclass(frozen=True)
class Sizes:
    impressions: int
    steps: int
    batch_size: int = 256
    rounds: int = 2  # interleaved (1 process, 2 processes) pairs
    sim_seed: int = 7


SIZES = {
    "smoke": Sizes(impressions=400, steps=4, batch_size=32, rounds=1),
    "quick": Sizes(impressions=8000, steps=100, batch_size=256, rounds=2),
    "full": Sizes(impressions=60000, steps=600, batch_size=1024, rounds=3),
}
ARMS = (("1 process", 1, "default"), ("2 processes", 2, "multi_worker_mirrored"))


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    config = from_dict({"training": {"batch_size": sizes.batch_size, "warm_start": False}})
    sim = context.simulation(sizes.impressions, sizes.sim_seed, config)
    examples = mw.link_examples(sim.train_files, os.path.join(context.work_dir, "examples"))
    rates: dict[str, list[float]] = {name: [] for name, _, _ in ARMS}
    runs = []
    for round_ in range(sizes.rounds):
        for name, processes, distribution in ARMS:
            base = os.path.join(context.work_dir, f"round{round_}-{processes}")
            arm_config: Config = config.replace(
                training=dataclasses.replace(config.training, distribution=distribution))
            inputs = mw.TrainerInputs(
                examples_uri=examples, transform_dir=sim.transform_dir,
                serving_model_dir=os.path.join(base, "model", "Format-Serving"),
                model_run_dir=os.path.join(base, "model_run"), working_dir=os.path.join(base, "working"),
                config_json=arm_config.to_json(), train_steps=sizes.steps, eval_steps=2)
            results = mw.run_processes(inputs, processes, os.path.join(base, "logs"))
            fit = max(r.fit_seconds for r in results)
            rate = results[0].global_steps * sizes.batch_size / fit
            rates[name].append(rate)
            runs.append({"arm": name, "round": round_, "fit_seconds": fit, "examples_per_second": rate,
                         "replicas": results[0].replicas,
                         "run_seconds": max(r.run_seconds for r in results)})
    medians = {name: statistics.median(v) for name, v in rates.items()}
    ratio = medians["2 processes"] / medians["1 process"]
    table = Table("run_fn's model.fit, examples/s (median over rounds)",
                  ["arm", "replicas", "examples/s", "each round", "vs 1 process"])
    for name, processes, _ in ARMS:
        table.rows.append([name, processes, f"{medians[name]:,.0f}",
                           ", ".join(f"{r:,.0f}" for r in rates[name]),
                           f"{medians[name] / medians['1 process']:.2f}×"])
    return BenchmarkResult(
        name=NAME,
        title="Multi-worker training on loopback: 1 process vs a chief + worker cluster",
        parameters=dict(sizes.__dict__),
        figures={"runs": runs, "median_examples_per_second": medians, "ratio_2_to_1": ratio},
        tables=[table],
        notes=[
            f"{sizes.steps} global steps of {sizes.batch_size} examples (each of the 2 replicas computes "
            f"{sizes.batch_size // 2} per step), on {sim.counts.get('train_examples', 0):,} transformed "
            f"train examples from {sizes.impressions:,} simulated impressions; default model.",
            "Wall time of model.fit in each process (validation on 2 eval batches per epoch included); "
            "the cluster's figure is its slower process. Process start-up and imports are not counted.",
            "All processes on this machine: the cluster's two workers share its cores, so this measures "
            "the cost of the collective protocol, not a speed-up a cluster of machines would give.",
        ],
    )
