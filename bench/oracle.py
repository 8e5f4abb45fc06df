"""Simulator vs oracle: how much of the achievable AUC each architecture reaches.

For every binary head the simulator knows the true P(label = 1) of each eval impression
(`oracle_scores.label_probability`: examination · p_click for click, and so on); its AUC on
the eval labels is the ceiling no model can beat on those labels. A model's share of the
oracle's gap over chance, (AUC − 0.5) / (AUC_oracle − 0.5), puts heads of very different
difficulty on one scale.

The model is scored the way its training objective sees the data: with the logged position
(the shallow tower's bias included), like the oracle, which knows the examination
probability. The served AUC (position missing, bias 0) is reported beside it.

Seeds vary the weights' initialization, the dropout and the shuffle on one simulated world,
so the spread is the training's, not the data sample's; the null-AUC standard error (a
scorer unrelated to the labels, Hanley & McNeil) gives the eval sample's scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, fmt, mean_sd
from watchnext.core.config import ARCHITECTURES, Config
from watchnext.models.model import multiplications_per_example
from watchnext.pipeline import oracle_scores

import numpy as np

NAME = "oracle"


@dataclass(frozen=True)
class Sizes(common.TrainingSizes):
    architectures: tuple[str, ...] = ARCHITECTURES


SIZES = {
    "smoke": Sizes(impressions=400, steps=0, seeds=1, batch_size=32, architectures=("mmoe",),
                   run_eagerly=True),
    # steps 0: each model trained as the Trainer trains it (epochs, early stopping), so an
    # architecture is compared at its own best, not at a step count that suits one of them.
    "quick": Sizes(impressions=10000, steps=0, seeds=1),
    "full": Sizes(impressions=40000, steps=0, seeds=3),
}


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    base = Config()
    sim = context.simulation(sizes.impressions, sizes.sim_seed, base)
    heads = oracle_scores.binary_heads(base)
    # steps 0: train as run_fn does (epochs, early stopping on one CRC32 half of the eval
    # requests) and score only the other half; else a fixed step budget scored on every eval row.
    converged = sizes.steps == 0
    if converged:
        halves = common.eval_halves(sim)
        validation, with_position, rows = halves.validation, halves.test_features, halves.test_rows
        served = common.without_position(with_position, base)
    else:
        validation, rows = None, None
        with_position, served = sim.eval_features(position=True), sim.eval_features(position=False)
    keep = slice(None) if rows is None else rows
    labels = {h: sim.eval_labels[base.head(h).label][keep] for h in heads}
    oracle = common.oracle_aucs(sim, heads, rows)
    null_se = {h: oracle_scores.null_auc_standard_error(labels[h]) for h in heads}

    runs: list[dict[str, Any]] = []
    macs: dict[str, int] = {}
    for arch in sizes.architectures:
        config = common.with_model(base, architecture=arch)
        macs[arch] = multiplications_per_example(config, sim.vocab_sizes())
        for seed in range(sizes.seeds):
            trained = (common.train_converged(sim, config, seed, validation, sizes.run_eagerly) if converged
                       else common.train(sim, config, sizes.steps, seed, sizes.batch_size, sizes.run_eagerly))
            auc = common.binary_aucs(sim, oracle_scores.predict(trained.model, with_position), heads, rows)
            served_auc = common.binary_aucs(sim, oracle_scores.predict(trained.model, served), heads, rows)
            runs.append({"architecture": arch, "seed": seed, "auc": auc, "served_auc": served_auc,
                         "oracle_share": {h: common.oracle_share(auc[h], oracle[h]) for h in heads},
                         "served_oracle_share": {h: common.oracle_share(served_auc[h], oracle[h])
                                                 for h in heads},
                         "train_seconds": trained.seconds, "final_loss": trained.final_loss,
                         "steps": trained.steps, "best_step": trained.best_step})

    def over_seeds(arch: str, key: str, head: str) -> dict[str, Any]:
        return mean_sd([r[key][head] for r in runs if r["architecture"] == arch])

    keys = ("auc", "served_auc", "oracle_share", "served_oracle_share")
    summary = {arch: {h: {key: over_seeds(arch, key, h) for key in keys}
                      for h in heads}
               for arch in sizes.architectures}
    train_seconds = {arch: mean_sd([r["train_seconds"] for r in runs if r["architecture"] == arch])
                     for arch in sizes.architectures}

    table = Table("AUC on the eval impressions (with logged position) and share of the oracle's gap closed",
                  ["architecture", "multiply-adds / candidate"]
                  + [c for h in heads for c in (f"{h} AUC", f"{h} share")] + ["train s"])
    table.rows.append(["**oracle** (true P)", "—"] + [c for h in heads for c in (f"{oracle[h]:.3f}", "1")]
                      + ["—"])
    for arch in sizes.architectures:
        table.rows.append([arch, f"{macs[arch]:,}"]
                          + [c for h in heads for c in (fmt(summary[arch][h]["auc"]),
                                                        fmt(summary[arch][h]["oracle_share"]))]
                          + [fmt(train_seconds[arch], 0)])
    served_table = Table("Served AUC (position missing: the shallow tower's bias is 0) and its share of the "
                         "same oracle's gap",
                         ["architecture"] + [c for h in heads for c in (f"{h} AUC", f"{h} share")])
    for arch in sizes.architectures:
        cells = [(fmt(summary[arch][h]["served_auc"]), fmt(summary[arch][h]["served_oracle_share"]))
                 for h in heads]
        served_table.rows.append([arch] + [c for pair in cells for c in pair])
    data_table = Table("Eval sample", ["head", "eval impressions", "positives", "oracle AUC",
                                       "null-AUC standard error"])
    for h in heads:
        data_table.rows.append([h, len(labels[h]), int(np.sum(labels[h] > 0.5)), f"{oracle[h]:.3f}",
                                f"{null_se[h]:.4f}"])

    t = base.training
    notes = [
        f"{sizes.seeds} training seed(s) per architecture on one simulated world (seed {sizes.sim_seed}, "
        f"{sizes.impressions} impressions, {sim.counts.get('train_examples')} train / "
        f"{sim.counts.get('eval_examples')} eval examples); ± is the sample standard deviation over seeds.",
        (f"Training as the Trainer's run_fn trains (batch {t.batch_size}, Adam lr {t.learning_rate}, up to "
         f"{t.epochs} epochs, validation each epoch on the eval requests of one CRC32 half, early stopping "
         f"after {t.early_stopping_patience} validation(s) without improvement, best weights restored; "
         "steps per model in the JSON); every AUC here, the oracle's included, is on the other half "
         f"({int(np.sum(rows))} of {len(sim.eval_keys)} eval impressions)." if converged else
         f"Training: {sizes.steps} steps of batch {sizes.batch_size}, Adam lr {t.learning_rate}.")
        + " Default sizes (config.model), all five heads trained; in-process, no TFX orchestration.",
        "Oracle: AUC of the simulator's true P(label = 1) = examination × P(label | examined) on the same "
        "impressions; it is the ceiling for these labels, not a model that could be trained.",
        "The main table scores the model with the logged position (the oracle knows the examination "
        "probability too); served AUC drops the position, so for position-biased heads (click) it cannot "
        "reach the oracle even in principle. bench/experiments/check_variants.py reports the served share.",
    ]
    if sizes.seeds == 1:
        notes.append("One seed: no spread is reported; differences between architectures "
                     "smaller than a few null-AUC standard errors are noise.")

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        width = 0.8 / len(heads)
        x = np.arange(len(sizes.architectures))
        for i, h in enumerate(heads):
            means = [summary[a][h]["oracle_share"]["mean"] for a in sizes.architectures]
            sds = [np.nan_to_num(summary[a][h]["oracle_share"]["sd"]) for a in sizes.architectures]
            ax.bar(x + (i - (len(heads) - 1) / 2) * width, means, width, yerr=sds, capsize=3, label=h)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(x, sizes.architectures)
        ax.set_ylabel("(AUC − 0.5) / (AUC_oracle − 0.5)")
        budget = "trained to early stopping" if converged else f"{sizes.steps} steps"
        ax.set_title(f"Share of the oracle's AUC gap closed ({sizes.seeds} seed(s), {budget})")
        ax.legend()

    return BenchmarkResult(
        name=NAME,
        title="Simulator vs oracle: per-head AUC and share of the oracle's gap, by architecture",
        parameters={**sizes.__dict__, "heads": heads},
        figures={"oracle_auc": oracle, "null_auc_standard_error": null_se,
                 "eval_positives": {h: int(np.sum(labels[h] > 0.5)) for h in heads},
                 "scored_impressions": len(labels[heads[0]]),
                 "counts": sim.counts, "multiplications_per_example": macs, "summary": summary,
                 "train_seconds": train_seconds, "runs": runs},
        tables=[table, served_table, data_table],
        plots=[Plot("share", "Share of the oracle's AUC gap over chance closed, per head and architecture "
                    "(bars: mean over seeds, whiskers: sd)", draw)],
        notes=notes,
    )
