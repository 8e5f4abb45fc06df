"""Issue 16 §2: measure negative transfer between the heads on one featurized simulation.

    nice -n 10 .venv/bin/python -m bench.experiments.negative_transfer --work-dir /tmp/transfer \\
        --impressions 150000 --variants before,after,click --seeds 0,1,2
    nice -n 10 .venv/bin/python -m bench.experiments.negative_transfer --work-dir /tmp/transfer \\
        --impressions 150000 --gradients before,after

The simulation (benchmarks.common.Context: join, split, the real preprocessing_fn) is
featurized once and cached in --work-dir. Each variant trains in-process with the run_fn's
settings (benchmarks.common.train) and prints one JSON line: the share of the oracle's AUC
gap closed per binary head, with the logged position ("share") and without it ("served"),
and for a watch_time head its mean served value. Variants are trained seed-major, so load
affects them alike. `--gradients` prints each head's gradient norm (loss_weight · L_k) into
the shared variable groups at initialisation. docs/notes/transfer.md has the figures.

A variant is a name from VARIANTS or a spec "heads;key=value;…" with heads "all" or a
comma list, and keys wt=mse|wlr (watch_time's loss), rating=labelled|batch (presence_loss),
wtpos=0|1 (watch_time's position bias).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from watchnext.core.config import Config
from watchnext.models.heads import label_priors, labelled, labelled_fraction
from watchnext.models.model import build_model
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import tensorflow as tf
import tf_keras

VARIANTS = {
    "before": "all;wt=mse;rating=labelled",
    "after": "all;wt=wlr;rating=batch",
    "click": "click",
    "click_watch_time_before": "click,watch_time;wt=mse",
    "click_watch_time_after": "click,watch_time;wt=wlr",
    "click_watch_time_before_no_position": "click,watch_time;wt=mse;wtpos=0",
    "click_rating_before": "click,rating;rating=labelled",
    "click_rating_after": "click,rating;rating=batch",
    "only_watch_time_fixed": "all;wt=wlr;rating=labelled",
    "only_rating_fixed": "all;wt=mse;rating=batch",
}
WATCH_TIME = {"mse": {"regression_loss": "mse", "label_transform": "log1p"},
              "wlr": {"regression_loss": "weighted_logistic", "label_transform": "none"}}
RATING = {"labelled": "labelled_mean", "batch": "batch_mean"}


def variant_config(base: Config, name: str) -> Config:
    """The Config of a named variant or spec (see the module docstring)."""
    parts = VARIANTS.get(name, name).split(";")
    names = list(base.head_names) if parts[0] == "all" else parts[0].split(",")
    changes: dict[str, dict[str, object]] = {"watch_time": {}, "rating": {}}
    for part in parts[1:]:
        key, value = part.split("=")
        if key == "wt":
            changes["watch_time"].update(WATCH_TIME[value])
        elif key == "rating":
            changes["rating"]["presence_loss"] = RATING[value]
        elif key == "wtpos":
            changes["watch_time"]["position_bias"] = value == "1"
        else:
            raise ValueError(f"variant {name!r}: unknown key {key!r} (wt, rating, wtpos)")
    heads = tuple(dataclasses.replace(base.head(n), **changes.get(n, {})) for n in names)
    return base.replace(heads=heads)


def shares(sim: datasets.FeaturizedSimulation, config: Config, steps: int, seed: int) -> dict[str, object]:
    heads = [h for h in oracle_scores.binary_heads(sim.config) if h in config.head_names]
    oracle = common.oracle_aucs(sim, heads)
    trained = common.train(sim, config, steps, seed)
    out: dict[str, object] = {"seed": seed, "steps": steps, "seconds": round(trained.seconds)}
    for key, position in (("share", True), ("served", False)):
        pred = oracle_scores.predict(trained.model, sim.eval_features(position=position))
        auc = common.binary_aucs(sim, pred, heads)
        out[key] = {h: round(common.oracle_share(auc[h], oracle[h]), 4) for h in heads}
        if not position and "watch_time" in pred:
            out["served_watch_time_mean"] = round(float(np.mean(pred["watch_time"])), 2)
    return out


def gradient_norms(sim: datasets.FeaturizedSimulation, config: Config, batches: int = 8
                   ) -> dict[str, dict[str, float]]:
    """{head: {shared group: mean ‖∇(loss_weight · L_head)‖}} at initialisation (prior biases set)."""
    tf_keras.utils.set_random_seed(0)
    model = build_model(config, sim.vocab_sizes(), label_priors(config, sim.train_dataset(256, 0)))
    norms: dict[str, dict[str, list[float]]] = {}
    for batch in sim.train_dataset(256, 123).take(batches):
        with tf.GradientTape(persistent=True) as tape:
            logits, _ = model.logits(batch, training=False)
            losses = {}
            for head, task, y in zip(config.heads, model.tasks, logits, strict=True):
                label, weight = labelled(head, batch)
                summed = task._loss(label[:, None], y[:, None], sample_weight=weight[:, None])
                loss = summed / tf.maximum(tf.reduce_sum(weight), 1.0)
                if head.presence and head.presence_loss == "batch_mean":
                    loss *= labelled_fraction(head, batch)
                losses[head.name] = head.loss_weight * loss
        groups = {"embeddings": model.encoder.trainable_variables,
                  "shared_hidden": model.shared_hidden.trainable_variables,
                  "mixing": model.mixing.trainable_variables,
                  "shallow_tower": model.shallow_tower.trainable_variables if model.shallow_tower else []}
        for name, loss in losses.items():
            for group, variables in groups.items():
                grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables) if g is not None]
                norms.setdefault(name, {}).setdefault(group, []).append(
                    float(tf.linalg.global_norm(grads)) if grads else 0.0)
        del tape
    return {h: {g: round(float(np.mean(v)), 5) for g, v in d.items()} for h, d in norms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", required=True, help="where the featurized simulation is cached")
    parser.add_argument("--impressions", type=int, default=150_000)
    parser.add_argument("--sim-seed", type=int, default=7)
    parser.add_argument("--variants", default="", help="comma list of VARIANTS names (or ';'-specs with '+')")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--gradients", default="",
                        help="comma list of variants whose gradient norms to print")
    args = parser.parse_args()

    base = Config()
    sim = common.Context(args.work_dir).simulation(args.impressions, args.sim_seed, base)
    for name in filter(None, args.gradients.split(",")):
        norms = gradient_norms(sim, variant_config(base, name))
        print(json.dumps({"variant": name, "gradient_norms": norms}), flush=True)
    variants = [v.replace("+", ",") for v in filter(None, args.variants.split(","))]
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in variants:
            t0 = time.time()
            result = shares(sim, variant_config(base, name), args.steps, seed)
            result["wall_seconds"] = round(time.time() - t0)
            print(json.dumps({"variant": name, **result}), flush=True)


if __name__ == "__main__":
    main()
