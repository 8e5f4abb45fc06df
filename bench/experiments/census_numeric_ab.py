"""Numeric embeddings on census-KDD, A/B in one process: same rows, same model code, seeds interleaved.

    .venv/bin/python -m bench.experiments.census_numeric_ab \\
        --examples OUTPUT/tfx/TableExampleGen/examples/N \\
        --variants none,piecewise_linear,buckets --seeds 0,1,2 --json ab.json

A full pipeline run per variant and seed costs a Transform per variant (31 vocabularies on
Beam) and a Trainer per seed; on a loaded machine that is out of reach for an A/B. This
script reads the raw train and test splits that TableExampleGen wrote (`--examples`, the
Examples artifact of a `watchnext run`/`bench census` of configs/census_income.yaml),
featurizes them in numpy as preprocessing_fn does (vocabulary ids by frequency with one OOV
row; log1p then z-score; quantile bins and their piecewise-linear encoding from
`models.preprocessing.piecewise_linear`, with exact rather than tft's approximate quantiles),
and trains the project's model (`build_model` with the label priors, Adam at the config's
learning rate, the config's steps and batch) for each variant. Test AUC on the test split.
Variant `none` is the config without numeric embeddings; the others encode every numeric
feature with `--buckets` bins and `--dim`-wide embeddings beside the z-scored value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any

import watchnext
from bench import census
from watchnext.core.config import Config, NumericEmbedding, load_config
from watchnext.models.heads import label_priors
from watchnext.models.model import build_model
from watchnext.models.preprocessing import piecewise_linear
from watchnext.pipeline import oracle_scores

import numpy as np
import tensorflow as tf
import tf_keras

CONFIG_FILE = os.path.join(os.path.dirname(watchnext.__file__), "configs", "census_income.yaml")


def variant_config(base: Config, encoding: str, buckets: int, dim: int) -> Config:
    names = () if encoding == "none" else base.features.numeric
    embeddings = tuple(NumericEmbedding(name, encoding, buckets=buckets, embedding_dim=dim) for name in names)
    return base.replace(features=dataclasses.replace(base.features, numeric_embeddings=embeddings))


def featurize(config: Config, train: dict[str, np.ndarray], test: dict[str, np.ndarray]
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]:
    """(train features, test features, vocabulary sizes), as preprocessing_fn computes them."""
    feats = config.features
    out_train: dict[str, np.ndarray] = {}
    out_test: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    for f in feats.ids:
        values, counts = np.unique(train[f.name], return_counts=True)
        order = values[np.lexsort((values, -counts))]
        index = {v: i for i, v in enumerate(order)}
        sizes[f.vocabulary] = len(order)
        for source, out in ((train, out_train), (test, out_test)):
            out[f.name] = np.array([index.get(v, len(order)) for v in source[f.name]], np.int64)
    embedded = {e.name: e for e in feats.numeric_embeddings}
    for name in feats.numeric:
        x_train, x_test = train[name].astype(np.float32), test[name].astype(np.float32)
        if name in feats.log1p_numeric:
            x_train, x_test = np.log1p(np.maximum(x_train, 0.0)), np.log1p(np.maximum(x_test, 0.0))
        mean, sd = x_train.mean(), x_train.std()
        sd = sd if sd > 0 else 1.0
        out_train[name], out_test[name] = (x_train - mean) / sd, (x_test - mean) / sd
        spec = embedded.get(name)
        if spec is None:
            continue
        inner = np.quantile(x_train, np.arange(1, spec.buckets) / spec.buckets).astype(np.float32)
        if spec.encoding == "buckets":  # tft.apply_buckets: bin i holds boundaries[i-1] <= x < boundaries[i]
            out_train[spec.output_key] = np.searchsorted(inner, x_train, side="right").astype(np.int64)
            out_test[spec.output_key] = np.searchsorted(inner, x_test, side="right").astype(np.int64)
        else:
            edges = tf.constant(np.concatenate([[x_train.min()], inner, [x_train.max()]]).astype(np.float32))
            out_train[spec.output_key] = piecewise_linear(tf.constant(x_train), edges).numpy()
            out_test[spec.output_key] = piecewise_linear(tf.constant(x_test), edges).numpy()
    return out_train, out_test, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", required=True, help="TableExampleGen's Examples artifact folder")
    parser.add_argument("--config", default=CONFIG_FILE)
    parser.add_argument("--variants", default="none,piecewise_linear,buckets")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--dim", type=int, default=4)
    parser.add_argument("--steps", type=int, default=0, help="0: the config's training.train_steps")
    parser.add_argument("--json", required=True, help="results (appended to; finished runs are skipped)")
    args = parser.parse_args()

    base = load_config(args.config)
    train, train_labels = census.table_split(args.examples, "train", base)
    test, test_labels = census.table_split(args.examples, "test", base)
    results: list[dict[str, Any]] = []
    if os.path.exists(args.json):
        with open(args.json, encoding="utf-8") as f:
            results = json.load(f)
    cache: dict[str, Any] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in args.variants.split(","):
            if any(r["variant"] == variant and r["seed"] == seed for r in results):
                continue
            config = variant_config(base, variant, args.buckets, args.dim)
            t = config.training
            steps = args.steps or t.train_steps
            if variant not in cache:
                cache[variant] = featurize(config, train, test)
            features, test_features, sizes = cache[variant]
            features = {**features, **{h: train_labels[h].astype(np.float32) for h in config.head_names}}
            tf_keras.utils.set_random_seed(seed)
            rows = len(train_labels[config.head_names[0]])
            batches = (tf.data.Dataset.from_tensor_slices(features)
                       .shuffle(rows, seed=seed).repeat().batch(t.batch_size))
            model = build_model(config, sizes, label_priors(config, batches))
            model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=t.learning_rate))
            t0 = time.time()
            model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
            out = model({k: tf.constant(v) for k, v in test_features.items()}, training=False)
            auc = {h: oracle_scores.auc(np.reshape(out[h].numpy(), [-1]), test_labels[h])
                   for h in config.head_names}
            results.append({"variant": variant, "seed": seed, "test_auc": auc, "steps": steps,
                            "buckets": args.buckets, "dim": args.dim, "seconds": time.time() - t0})
            print(variant, seed, {h: round(a, 4) for h, a in auc.items()}, flush=True)
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
