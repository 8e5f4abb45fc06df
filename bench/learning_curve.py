"""Learning curves: does more data make a better ranker? Share of the oracle's gap per head vs impressions.

Each size is one simulated day (the same world, simulator seed `sim_seed`), featurized by the
real preprocessing_fn. Every model trains as the Trainer's run_fn does (config.training: batch,
learning rate, epochs over all train examples, early stopping with the best weights restored),
so a bigger day means more steps, not a fixed budget.

The eval split is cut in two by request id: early stopping watches one half, and the AUCs
are read on the other (with the oracle's on the same rows), so the stopping rule never sees
the rows it is judged on.

Two models per size and seed: the default five-head model and the same model with the click
head alone. Click-only is the negative-transfer reference (issue 16 §2): the multitask
model's click share should not be below it by more than the seed spread.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, fmt, mean_sd
from watchnext.core.config import Config
from watchnext.pipeline import oracle_scores

import numpy as np

NAME = "learning_curve"
# Model name → which heads it trains ("all": the config's five).
MODELS = {"default": "all", "click_only": "click"}


@dataclass(frozen=True)
class Sizes:
    impression_sizes: tuple[int, ...]
    seeds: int
    sim_seed: int = 7
    run_eagerly: bool = False
    # Overrides of config.training for every model (empty: the Trainer's defaults).
    epochs: int = 0


SIZES = {
    "smoke": Sizes(impression_sizes=(400, 800), seeds=1, run_eagerly=True, epochs=2),
    "quick": Sizes(impression_sizes=(10000, 40000), seeds=1),
    "full": Sizes(impression_sizes=(40000, 400000, 1000000), seeds=2),
}


def model_config(base: Config, model: str) -> Config:
    """The config of one of MODELS: `base` with only the named heads ("all": unchanged)."""
    heads = MODELS[model]
    return base if heads == "all" else base.replace(heads=tuple(base.head(h) for h in heads.split(",")))


def base_config(sizes: Sizes) -> Config:
    base = Config()
    if sizes.epochs:
        base = base.replace(training=dataclasses.replace(base.training, epochs=sizes.epochs))
    return base


def measure_size(context: common.Context, sizes: Sizes, impressions: int) -> dict[str, Any]:
    """Every model and seed on one simulated day of `impressions`: per-head AUC on the test half."""
    base = base_config(sizes)
    sim = context.simulation(impressions, sizes.sim_seed, base)
    heads = oracle_scores.binary_heads(base)
    halves = common.eval_halves(sim)
    validation, with_position, test_rows = halves.validation, halves.test_features, halves.test_rows
    served = common.without_position(with_position, base)
    labels = {h: sim.eval_labels[base.head(h).label][test_rows] for h in heads}
    oracle = common.oracle_aucs(sim, heads, test_rows)

    runs = []
    for model_name in MODELS:
        config = model_config(base, model_name)
        for seed in range(sizes.seeds):
            trained = common.train_converged(sim, config, seed, validation, sizes.run_eagerly)
            scored = [h for h in heads if h in config.head_names]
            logged = oracle_scores.predict(trained.model, with_position)
            live = oracle_scores.predict(trained.model, served)
            auc = {h: oracle_scores.auc(logged[h], labels[h]) for h in scored}
            served_auc = {h: oracle_scores.auc(live[h], labels[h]) for h in scored}
            runs.append({"impressions": impressions, "model": model_name, "seed": seed, "auc": auc,
                         "served_auc": served_auc,
                         "oracle_share": {h: common.oracle_share(auc[h], oracle[h]) for h in scored},
                         "steps": trained.steps, "best_step": trained.best_step,
                         "epochs": trained.steps * trained.batch_size / sim.counts["train_examples"],
                         "best_epoch": trained.best_step * trained.batch_size / sim.counts["train_examples"],
                         "stop_reason": trained.stop_reason, "train_seconds": trained.seconds})
    return {"impressions": impressions, "counts": sim.counts, "oracle_auc": oracle,
            "test_rows": int(test_rows.sum()), "validation_rows": int((~test_rows).sum()),
            "test_positives": {h: int(np.sum(labels[h] > 0.5)) for h in heads},
            "null_auc_standard_error": {h: oracle_scores.null_auc_standard_error(labels[h]) for h in heads},
            "runs": runs}


def summarize(points: list[dict[str, Any]], heads: list[str]) -> dict[str, Any]:
    """{impressions: {model: {head: {auc, served_auc, oracle_share: mean_sd}, epochs, ...}}}."""
    summary: dict[str, Any] = {}
    for point in points:
        per_model: dict[str, Any] = {}
        for model_name in MODELS:
            runs = [r for r in point["runs"] if r["model"] == model_name]
            per_model[model_name] = {
                **{h: {key: mean_sd([r[key][h] for r in runs])
                       for key in ("auc", "served_auc", "oracle_share")}
                   for h in heads if h in runs[0]["auc"]},
                **{key: mean_sd([r[key] for r in runs])
                   for key in ("epochs", "best_epoch", "train_seconds")}}
        summary[str(point["impressions"])] = per_model
    return summary


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    heads = oracle_scores.binary_heads(Config())
    points = [measure_size(context, sizes, n) for n in sizes.impression_sizes]
    summary = summarize(points, heads)

    table = Table("Share of the oracle's AUC gap closed on the test half of the eval split "
                  "(logged position), by impressions in the day",
                  ["impressions", "train examples", "model", "epochs run (best)"]
                  + [f"{h} share" for h in heads] + ["served click AUC", "train s"])
    auc_table = Table("AUC on the test half (oracle: the simulator's true P on the same rows)",
                      ["impressions", "model"] + [f"{h} AUC" for h in heads])
    for point in points:
        key = str(point["impressions"])
        auc_table.rows.append([f"{point['impressions']:,}", "**oracle**"]
                              + [f"{point['oracle_auc'][h]:.3f}" for h in heads])
        for model_name in MODELS:
            s = summary[key][model_name]
            table.rows.append([f"{point['impressions']:,}", f"{point['counts']['train_examples']:,}",
                               model_name, f"{fmt(s['epochs'], 1)} ({fmt(s['best_epoch'], 1)})"]
                              + [fmt(s[h]["oracle_share"]) if h in s else "—" for h in heads]
                              + [fmt(s["click"]["served_auc"]), fmt(s["train_seconds"], 0)])
            auc_table.rows.append([f"{point['impressions']:,}", model_name]
                                  + [fmt(s[h]["auc"]) if h in s else "—" for h in heads])
    data_table = Table("Test half: rows, positives and the null-AUC standard error per head",
                       ["impressions", "test rows", "validation rows"]
                       + [c for h in heads for c in (f"{h} positives", f"{h} null SE")])
    for point in points:
        data_table.rows.append([f"{point['impressions']:,}", f"{point['test_rows']:,}",
                                f"{point['validation_rows']:,}"]
                               + [c for h in heads for c in (f"{point['test_positives'][h]:,}",
                                                             f"{point['null_auc_standard_error'][h]:.4f}")])
    t = base_config(sizes).training
    notes = [
        f"One simulated world (simulator seed {sizes.sim_seed}); each size is its first day at that many "
        f"impressions. {sizes.seeds} training seed(s) per model; ± is the sample sd over seeds.",
        f"Training as the Trainer's run_fn: batch {t.batch_size}, Adam lr {t.learning_rate}, up to "
        f"{t.epochs} epochs over every train example, validation once per epoch on the validation half, "
        f"early stopping after {t.early_stopping_patience} validations without improvement of the weighted "
        "eval loss, best weights restored. 'epochs run (best)': the passes trained and the pass whose "
        "weights were kept.",
        "Share = (AUC − 0.5) / (AUC_oracle − 0.5), on the test half, scored with the logged position as the "
        "oracle is (it knows the examination probability). Served click AUC drops the position (bias 0).",
        "click_only trains the default model with the click head alone: the reference for negative transfer.",
    ]

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        x = [p["impressions"] for p in points]
        for h in heads:
            for model_name, style in (("default", "-o"), ("click_only", "--s")):
                if h not in summary[str(x[0])][model_name]:
                    continue
                means = [summary[str(n)][model_name][h]["oracle_share"]["mean"] for n in x]
                sds = [np.nan_to_num(summary[str(n)][model_name][h]["oracle_share"]["sd"]) for n in x]
                ax.errorbar(x, means, yerr=sds, fmt=style, capsize=3,
                            label=f"{h} ({model_name.replace('_', ' ')})")
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("impressions in the day (log)")
        ax.set_ylabel("(AUC − 0.5) / (AUC_oracle − 0.5)")
        ax.set_title("Share of the oracle's gap vs data (epochs + early stopping)")
        ax.legend()

    return BenchmarkResult(
        name=NAME,
        title="Learning curves: share of the oracle's gap per head vs impressions, multitask vs click only",
        parameters={**sizes.__dict__, "heads": heads, "models": MODELS},
        figures={"summary": summary, "points": points},
        tables=[table, auc_table, data_table],
        plots=[Plot("share", "Share of the oracle's AUC gap per head vs impressions (mean over seeds, "
                    "whiskers: sd); solid: the default five-head model, dashed: click only", draw)],
        notes=notes,
    )
