"""How often the blessing refuses an equally good retrain, and a half-trained model (issue 16 §4).

    .venv/bin/python -m bench.experiments.false_refusals [--impressions 20000] [--steps 600] [--seeds 10]
        [--half-seeds 3] [--work-dir DIR] [--json out.json]

One simulated day (the `make run` default size), featurized by the real preprocessing_fn;
the default model trained in-process (benchmarks/common.py: the Trainer's fit without the
orchestration) with seed 0 as the served model, seeds 1..N as retrains of the same data, and
seeds 0..H-1 on half the steps. `--steps N` trains every model N steps (half: N // 2);
`--steps 0` trains as the Trainer does (config.training: epochs, early stopping on the eval
split, the best weights restored) and the half-step models for half the served model's best
step, i.e. half the training of a converged model. Each candidate is judged against the served model by the
Evaluator's own decision code (components/evaluator/metrics.py) on the eval split, and by the
old rule (point estimate: AUC drop > max_auc_drop or MSE ratio > 1 + max_mse_increase_ratio)
for comparison. Prints one JSON line per candidate and a summary.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from watchnext.components.evaluator.component import _request_codes
from watchnext.components.evaluator.metrics import Scored, evaluate
from watchnext.core.config import Config
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import tensorflow as tf


def eval_columns(sim: datasets.FeaturizedSimulation, config: Config) -> dict[str, np.ndarray]:
    """Labels, presence, device, position and request codes of the eval rows."""
    spec = datasets.raw_feature_spec()
    f = config.features
    names = [*config.label_keys, f.device, f.position, f.request_id]
    parsed = tf.io.parse_example(sim.eval_raw, {n: spec[n] for n in names})
    columns = {n: parsed[n].numpy()[:, 0] for n in names}
    columns[f.device] = np.array([v.decode() for v in columns[f.device].tolist()], dtype=object)
    columns["request"] = _request_codes(columns[f.request_id])
    return columns


def old_rule(config: Config, comparison: dict) -> list[str]:
    """The TFMA-era change thresholds on the point estimates."""
    e = config.evaluation
    out = []
    for head in config.heads:
        c = comparison[head.name]
        if head.type == "binary" and c["diff"] is not None and c["diff"] < -e.max_auc_drop:
            out.append(head.name)
        if head.type == "regression" and c["diff"] is not None and c["diff"] > 1 + e.max_mse_increase_ratio:
            out.append(head.name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--half-seeds", type=int, default=3)
    parser.add_argument("--work-dir")
    parser.add_argument("--json")
    args = parser.parse_args()
    config = Config()
    work = args.work_dir or tempfile.mkdtemp(prefix="false_refusals-")
    sim = common.Context(work).simulation(args.impressions, 7, config)
    served = sim.eval_features(position=False)
    columns = eval_columns(sim, config)

    # The Trainer stops early on the eval split, and the Evaluator judges on the same rows.
    validation = sim.eval_features(position=True, labels=True) if args.steps == 0 else None

    def predictions(steps: int, seed: int) -> tuple[dict[str, np.ndarray], int]:
        """(served predictions, steps the kept weights trained); steps 0: converged training."""
        if steps == 0:
            trained = common.train_converged(sim, config, seed, validation)
            kept = trained.best_step
        else:
            trained = common.train(sim, config, steps, seed)
            kept = steps
        return {k: v.reshape(-1) for k, v in oracle_scores.predict(trained.model, served).items()}, kept

    baseline, baseline_steps = predictions(args.steps, 0)
    print(json.dumps({"kind": "served", "steps": baseline_steps, "seed": 0}), flush=True)
    rows = []
    runs = [("seed_rerun", args.steps, s) for s in range(1, args.seeds + 1)]
    runs += [("half_steps", max(1, baseline_steps // 2), s) for s in range(args.half_seeds)]
    for kind, steps, seed in runs:
        candidate, kept = predictions(steps, seed)
        result = evaluate(config, Scored(columns, candidate, baseline))
        c = result["comparison"]
        row = {"kind": kind, "steps": kept, "seed": seed, "blessed": result["blessed"],
               "failures": result["failures"], "old_rule_refuses": old_rule(config, c),
               "click_auc_diff": c["click"]["diff"], "click_auc_se": c["click"]["se"],
               "like_auc_diff": c["like"]["diff"], "dismiss_auc_diff": c["dismiss"]["diff"],
               "watch_time_mse_ratio": c["watch_time"]["diff"], "rating_mse_ratio": c["rating"]["diff"]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = {"eval_examples": len(columns["request"]), "impressions": args.impressions,
               "steps": args.steps or "converged", "served_model_steps": baseline_steps}
    for kind in ("seed_rerun", "half_steps"):
        mine = [r for r in rows if r["kind"] == kind]
        summary[kind] = {"runs": len(mine), "refused": sum(not r["blessed"] for r in mine),
                         "refused_by_old_rule": sum(bool(r["old_rule_refuses"]) for r in mine)}
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
