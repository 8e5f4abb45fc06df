"""Issue 16 §3: would a shallow tower that knew the true examination rank better?

    nice -n 5 .venv/bin/python -m bench.experiments.true_examination --work-dir /work/bench_cache \\
        --impressions 1000000 --seeds 2 --policy-popularity 0

Under the relevance-ranked logging policy the learned shallow tower ranks worse than a model
without position (reports/position_bias_1m/). Two explanations predict different things: if the
tower's bias is wrong, a tower that outputs the simulator's own log P(examined | position,
device) should close the gap; if debiasing itself costs ranking quality there, it should not.
This runs `bench.position_bias.measure_world` for the `shallow_tower:log_examination` arm with
`ShallowTower.call` replaced, in this process only, by a lookup of the true log examination
(SimulatorParams.examination), without position dropout (the truth is known for every row).
The tower's weights stay in the graph at zero weight so Keras sees a gradient for each. Same
simulation, training (to early stopping on one half of the eval requests) and scoring (the other
half) as the benchmark; one JSON line per seed, then the logged and random orders' NDCG@10.
docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench import position_bias as pb
from watchnext.core.config import Config
from watchnext.models.layers import shallow_tower
from watchnext.simulator.params import SimulatorParams

import numpy as np
import tensorflow as tf


def true_log_examination(config: Config, device_vocabulary: list[str]) -> np.ndarray:
    """[max_position, devices] table of the simulator's log P(examined), devices in vocabulary order."""
    params = SimulatorParams()
    positions = np.arange(config.features.max_position)
    table = np.zeros([len(positions), len(device_vocabulary)], np.float32)
    for j, device in enumerate(device_vocabulary):
        if device in params.devices:
            table[:, j] = np.log(params.examination(positions, np.full(len(positions),
                                                                       params.devices.index(device))))
    return table


def use_true_examination(table: np.ndarray) -> None:
    """Make every ShallowTower in this process output `table`[position, device] (0 where missing)."""
    lookup = tf.constant(table)

    def call(self: Any, position: tf.Tensor, device: tf.Tensor, training: Any = None) -> tf.Tensor:
        position = tf.minimum(position, self.max_position - 1)
        missing = position < 0
        p = tf.maximum(position, 0)
        d = tf.cast(tf.reshape(device, [-1]), p.dtype)
        x = tf.concat([self.position_embedding(p), self.device_embedding(d),
                       self.cross_embedding(p * self.num_devices + d)], axis=-1)
        unused = 0.0 * tf.squeeze(self.out(self.hidden(x)), axis=-1)
        bias = tf.gather_nd(lookup, tf.stack([p, d], axis=-1)) + unused
        return tf.where(missing, tf.zeros_like(bias), bias)

    shallow_tower.ShallowTower.call = call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", required=True, help="where the featurized simulation is cached")
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--policy-popularity", type=float, default=0.0)
    args = parser.parse_args()

    base = Config()
    context = common.Context(args.work_dir)
    weight = args.policy_popularity
    sim = context.simulation(args.impressions, 7, base, **({"policy_popularity": weight} if weight else {}))
    use_true_examination(true_log_examination(base, pb.device_vocabulary(sim, base)))
    sizes = pb.Sizes(impressions=args.impressions, steps=0, seeds=args.seeds, modes=(pb.LOG_EXAMINATION_ARM,),
                     policy_popularity=(weight,))
    world = pb.measure_world(context, sizes, base, weight)
    for run in world["runs"]:
        print(json.dumps({"arm": "true examination, log_examination form", "policy_popularity": weight,
                          "seed": run["seed"], "ndcg": run["ndcg"],
                          "served_click_auc": run["served_click_auc"], "steps": run["steps"],
                          "best_step": run["best_step"],
                          "bias_vs_true_r": run["bias_fit"]["pearson_r"]}), flush=True)
    print(json.dumps({"baselines": world["baselines"]}))


if __name__ == "__main__":
    main()
