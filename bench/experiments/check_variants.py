"""Train every architecture × position mode on one simulated day and compare them as served.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m bench.experiments.check_variants --steps 500

One featurized simulation (watchnext.pipeline.datasets: the ExampleGen's join and split,
the real preprocessing_fn on tf.Transform/Beam) is shared by all variants. Each variant is
trained for --steps batches, exported with models.export.export_model, reloaded, and
scored through `serving_default` with serialized raw tf.Examples holding only what a
client sends (no labels, no position). The table gives, per variant, the multiplications
per example of the served model, each binary head's eval AUC and the share of the
oracle's gap over chance it closes ((AUC − ½)/(AUC_oracle − ½), oracle = the simulator's
true P(label)), the click AUC with the position key (in memory), the Spearman correlation
of the served click score with the true P(click | examined) (label AUCs on logged data
reward learning the logging policy's position bias; this does not), and the largest
difference between the SavedModel's and the in-memory model's predictions.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import sys
import tempfile
import time
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core import log_schema as schema
from watchnext.core.config import ARCHITECTURES, POSITION_MODES, Config
from watchnext.models.export import EXAMPLES_INPUT, SERVING_SIGNATURE, export_model
from watchnext.models.model import multiplications_per_example
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import tensorflow as tf
import tf_keras
from scipy.stats import spearmanr

log = logging.getLogger("check_variants")


def client_examples(data: datasets.FeaturizedSimulation) -> list[bytes]:
    """The eval examples reduced to the model's raw inputs: what a serving client sends."""
    feats = data.config.features
    keep = {f.name for f in feats.ids} | set(feats.numeric)
    out = []
    example = tf.train.Example()
    for record in data.eval_raw:
        example.ParseFromString(record)
        for key in [k for k in example.features.feature if k not in keep]:
            del example.features.feature[key]
        out.append(example.SerializeToString())
    return out


def serve(export_dir: str, examples: list[bytes], batch_size: int = 2048) -> dict[str, np.ndarray]:
    """Outputs of the reloaded SavedModel's serving_default, batch by batch."""
    loaded = tf.saved_model.load(export_dir)
    signature = loaded.signatures[SERVING_SIGNATURE]
    parts = []
    for start in range(0, len(examples), batch_size):
        batch = tf.constant(examples[start:start + batch_size])
        parts.append({k: v.numpy() for k, v in signature(**{EXAMPLES_INPUT: batch}).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def check_variant(data: datasets.FeaturizedSimulation, architecture: str, position_mode: str, steps: int,
                  served_inputs: dict[str, np.ndarray], positioned_inputs: dict[str, np.ndarray],
                  examples: list[bytes], export_root: str | None) -> dict[str, Any]:
    """Train, (export, reload,) score one variant; a row of the table as a dict."""
    config = data.config.replace(model=dataclasses.replace(
        data.config.model, architecture=architecture, position_mode=position_mode))
    t0 = time.time()
    model = datasets.train_model(data, config, steps)
    train_seconds = time.time() - t0
    in_memory = oracle_scores.predict(model, served_inputs)
    predictions, max_diff = in_memory, float("nan")
    if export_root is not None:
        export_dir = os.path.join(export_root, f"{architecture}-{position_mode}")
        export_model(model, data.tf_transform_output(), config, export_dir)
        predictions = serve(export_dir, examples)
        max_diff = max(float(np.max(np.abs(predictions[h] - in_memory[h]))) for h in config.head_names)
    served = oracle_scores.score_heads(data, predictions)
    click_head = next(h.name for h in config.heads if h.label == schema.CLICK)
    positioned = oracle_scores.score_heads(data, oracle_scores.predict(model, positioned_inputs))
    click = next(s for s in positioned if s.head == click_head)
    # Label AUCs reward a model that learns the logging policy's position bias (position_mode
    # none); the rank correlation with the true P(click | examined) does not.
    relevance_rho = float(spearmanr(predictions[click_head], data.truth["p_click"]).statistic)
    row = {
        "architecture": architecture, "position_mode": position_mode,
        "multiplications": multiplications_per_example(config, data.vocab_sizes()),
        **{f"{s.head}_auc": s.auc for s in served},
        **{f"{s.head}_share": s.oracle_share for s in served},
        "click_auc_with_position": click.auc,
        "click_relevance_rho": relevance_rho,
        "max_abs_diff_export": max_diff,
        "train_seconds": train_seconds, "seconds": time.time() - t0,
    }
    del model
    tf_keras.backend.clear_session()
    gc.collect()
    return row


def format_table(rows: list[dict[str, Any]], heads: list[str]) -> str:
    """The rows as a Markdown table."""
    header = ["architecture", "position_mode", "mult/example"]
    header += [f"{h} AUC (share)" for h in heads]
    header += ["click AUC w/ position", "click ρ vs true p_click", "max abs Δ export", "s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["architecture"], r["position_mode"], f"{r['multiplications']:,}"]
        cells += [f"{r[f'{h}_auc']:.4f} ({r[f'{h}_share']:.0%})" for h in heads]
        cells += [f"{r['click_auc_with_position']:.4f}", f"{r['click_relevance_rho']:.3f}",
                  f"{r['max_abs_diff_export']:.1e}",
                  f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per variant")
    parser.add_argument("--impressions", type=int, default=60000, help="simulated impressions (one day)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--position-modes", default=",".join(POSITION_MODES))
    parser.add_argument("--no-export", action="store_true",
                        help="score the in-memory model instead of the reloaded SavedModel")
    parser.add_argument("--work-dir", default="",
                        help="where logs, examples and models go (default: a temp dir)")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    # force: TensorFlow's absl handler is already on the root logger, which makes basicConfig a no-op.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    for noisy in ("apache_beam", "tensorflow", "absl", "tensorflow_transform", "tfx_bsl"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    architectures = [a for a in args.architectures.split(",") if a]
    modes = [m for m in args.position_modes.split(",") if m]
    for value, allowed, flag in ((architectures, ARCHITECTURES, "--architectures"),
                                 (modes, POSITION_MODES, "--position-modes")):
        bad = sorted(set(value) - set(allowed))
        if bad:
            parser.error(f"{flag}: {bad} not in {list(allowed)}")

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="check_variants-")
    t0 = time.time()
    data = datasets.featurized_simulation(work_dir, args.impressions, args.seed, Config())
    log.info("featurized %s in %.0f s", data.counts, time.time() - t0)
    served_inputs = data.eval_features(position=False)
    positioned_inputs = data.eval_features(position=True)
    examples = client_examples(data)
    export_root = None if args.no_export else os.path.join(work_dir, "models")

    rows = []
    for architecture in architectures:
        for mode in modes:
            row = check_variant(data, architecture, mode, args.steps, served_inputs, positioned_inputs,
                                examples, export_root)
            log.info("%s", json.dumps(row))
            rows.append(row)
    heads = oracle_scores.binary_heads(data.config)
    oracle = oracle_scores.score_heads(
        data, {h: oracle_scores.label_probability(data.truth, data.config.head(h).label) for h in heads})
    print(f"\n{args.steps} steps × batch {data.config.training.batch_size} per variant; "
          f"{data.counts}; served = {'in-memory model' if args.no_export else 'reloaded SavedModel'}, "
          "no position key")
    print("oracle AUC: " + ", ".join(f"{s.head} {s.oracle_auc:.4f}" for s in oracle)
          + "; 5·SE₀ bound: " + ", ".join(f"{s.head} {0.5 + 5 * s.null_se:.3f}" for s in oracle))
    print(format_table(rows, heads))
    print(f"total {time.time() - t0:.0f} s; work dir {work_dir}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
