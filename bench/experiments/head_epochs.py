"""Issue 16 §2: each binary head's share of the oracle's gap after every epoch, multitask vs alone.

    nice -n 10 .venv/bin/python -m bench.experiments.head_epochs --work-dir /work/bench_cache \\
        --impressions 1000000 --epochs 6 --variants all,like,dismiss

The learning curves (bench/learning_curve.py) stop every model on the weighted total eval loss,
which the click and watch-time heads dominate; this asks whether the rarer like and dismiss
heads would keep improving after that point, and whether they do better trained alone. Each
variant (see variant_config: the default heads, with the shallow tower's bias on more heads, or
one head alone) trains for
`--epochs` full passes with no early stopping, and after each pass prints one JSON line with the
share of the oracle's AUC gap closed per head on the test half of the eval requests (the same
CRC32 half bench/learning_curve.py scores), with the logged position. docs/notes/head_epochs.md
has the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from watchnext.core.config import Config
from watchnext.models import fit
from watchnext.pipeline import oracle_scores

import tf_keras


class ShareAfterEachEpoch(tf_keras.callbacks.Callback):
    """After each Keras epoch (one pass here), the test-half share per head, printed as JSON."""

    def __init__(self, variant: str, features: dict, labels: dict, oracle: dict) -> None:
        super().__init__()
        self.variant, self.features, self.labels, self.oracle = variant, features, labels, oracle
        self.started = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        predicted = oracle_scores.predict(self.model, self.features)
        shares = {h: round(common.oracle_share(oracle_scores.auc(predicted[h], y), self.oracle[h]), 4)
                  for h, y in self.labels.items() if h in predicted}
        print(json.dumps({"variant": self.variant, "epoch": epoch + 1, "share": shares,
                          "train_loss": round(float((logs or {}).get("loss", math.nan)), 5),
                          "seconds": round(time.time() - self.started)}), flush=True)


def variant_config(base: Config, variant: str) -> Config:
    """"all": the default heads; "all+bias=h1/h2": with the shallow tower's bias also on heads
    h1, h2 ("all+bias=h1/h2+form=log_examination": and that model.position_bias_form); a head
    name: that head alone."""
    if variant == "all":
        return base
    if variant.startswith("all+bias="):
        spec, _, form = variant.removeprefix("all+bias=").partition("+form=")
        if form:
            base = base.replace(model=dataclasses.replace(base.model, position_bias_form=form))
        biased = set(spec.split("/"))
        return base.replace(heads=tuple(
            dataclasses.replace(h, position_bias=h.position_bias or h.name in biased) for h in base.heads))
    return base.replace(heads=(base.head(variant),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", required=True, help="where the featurized simulation is cached")
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--sim-seed", type=int, default=7)
    parser.add_argument("--variants", default="all,like,dismiss")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = Config()
    sim = common.Context(args.work_dir).simulation(args.impressions, args.sim_seed, base)
    heads = oracle_scores.binary_heads(base)
    halves = common.eval_halves(sim)
    features, test_rows = halves.test_features, halves.test_rows
    labels = {h: sim.eval_labels[base.head(h).label][test_rows] for h in heads}
    oracle = common.oracle_aucs(sim, heads, test_rows)
    print(json.dumps({"oracle_auc": oracle, "test_rows": int(test_rows.sum())}), flush=True)
    for variant in filter(None, args.variants.split(",")):
        config = variant_config(base, variant)
        tf_keras.backend.clear_session()
        tf_keras.utils.set_random_seed(args.seed)
        train = sim.train_dataset(config.training.batch_size, args.seed)
        model = fit.new_model(config, sim.vocab_sizes(), train)
        budget = fit.training_budget(sim.counts["train_examples"], config)
        per_epoch = budget.steps_per_epoch
        fit.fit(model, train, per_epoch * args.epochs, validation_interval=per_epoch,
                callbacks=[ShareAfterEachEpoch(variant, features, labels, oracle)])


if __name__ == "__main__":
    main()
