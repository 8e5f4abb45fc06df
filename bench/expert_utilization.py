"""Expert utilization: how each task's MMoE gate spreads its weight, with and without gate dropout.

The paper drops experts from the gates in training (10 %) because gates polarize: a task's
softmax puts nearly all its weight on one expert and the others stop learning from it. Here
the default MMoE is trained with `model.gate_dropout` 0.1 and 0.0 over several seeds, and
the gates are read on the eval impressions through the model's `gate_weights` (the same
function the `gate_weights` signature serves; inference, so no dropout). Per task:

- polarized share: the fraction of impressions whose gate puts > 0.9 of its mass on one expert;
- mean of the largest weight, and the gate's entropy normalized by log(n_experts) (1 = uniform);
- mean weight per expert (which experts a task reads), drawn as a heatmap per dropout rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, fmt, mean_sd
from watchnext.core.config import Config
from watchnext.models.expert_utilization import gate_statistics

import numpy as np

NAME = "expert_utilization"
# The threshold the Trainer's polarization alarm uses (evaluation.polarized_gate_weight).
POLARIZED = Config().evaluation.polarized_gate_weight


@dataclass(frozen=True)
class Sizes(common.TrainingSizes):
    gate_dropouts: tuple[float, ...] = (0.1, 0.0)


SIZES = {
    "smoke": Sizes(impressions=400, steps=2, seeds=1, batch_size=32, run_eagerly=True),
    "quick": Sizes(impressions=10000, steps=300, seeds=2),
    "full": Sizes(impressions=40000, steps=600, seeds=3),
}


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    base = common.with_model(Config(), architecture="mmoe")
    sim = context.simulation(sizes.impressions, sizes.sim_seed, base)
    inputs = sim.eval_features(position=False)
    tasks = base.head_names

    runs: list[dict[str, Any]] = []
    for rate in sizes.gate_dropouts:
        config = common.with_model(base, gate_dropout=rate)
        for seed in range(sizes.seeds):
            trained = common.train(sim, config, sizes.steps, seed, sizes.batch_size, sizes.run_eagerly)
            gates = common.gate_weights(trained.model, inputs)
            # A sample of seed 0's gates for the distribution plot (not written to the JSON).
            sample = {t: gates[t][:2000] for t in tasks} if seed == 0 else None
            runs.append({"gate_dropout": rate, "seed": seed, "train_seconds": trained.seconds,
                         "tasks": {t: gate_statistics(gates[t], POLARIZED) for t in tasks}, "sample": sample})

    summary = {}
    for rate in sizes.gate_dropouts:
        mine = [r for r in runs if r["gate_dropout"] == rate]
        summary[str(rate)] = {
            t: {key: mean_sd([r["tasks"][t][key] for r in mine])
                for key in ("polarized_share", "mean_max_weight", "normalized_entropy")}
            for t in tasks}
        summary[str(rate)]["all_tasks"] = {"polarized_share": mean_sd(
            [np.mean([r["tasks"][t]["polarized_share"] for t in tasks]) for r in mine])}

    table = Table(f"Share of eval impressions whose gate puts > {POLARIZED} on one expert (mean ± sd over "
                  f"{sizes.seeds} seed(s))",
                  ["task", *(f"gate_dropout {rate}" for rate in sizes.gate_dropouts)])
    for t in tasks:
        table.rows.append([t, *(fmt(summary[str(r)][t]["polarized_share"]) for r in sizes.gate_dropouts)])
    table.rows.append(["**all tasks**", *(fmt(summary[str(r)]["all_tasks"]["polarized_share"])
                                          for r in sizes.gate_dropouts)])
    spread = Table("Gate spread: mean largest weight / normalized entropy (1 = uniform over experts)",
                   ["task", *(f"gate_dropout {rate}" for rate in sizes.gate_dropouts)])
    for t in tasks:
        spread.rows.append([t, *(f"{fmt(summary[str(r)][t]['mean_max_weight'], 2)} / "
                                 f"{fmt(summary[str(r)][t]['normalized_entropy'], 2)}"
                                 for r in sizes.gate_dropouts)])
    # Expert indices are arbitrary per trained model (any permutation is the same model), so
    # which experts a task reads is shown for one model per dropout rate, never averaged over seeds.
    seed0 = {rate: next(r for r in runs if r["gate_dropout"] == rate and r["seed"] == 0)
             for rate in sizes.gate_dropouts}
    usage = Table("Mean gate weight per expert (seed 0's model; expert indices are not comparable across "
                  "models)",
                  ["gate_dropout", "task", *(f"expert {i}" for i in range(base.model.num_experts))])
    for rate in sizes.gate_dropouts:
        for t in tasks:
            weights = seed0[rate]["tasks"][t]["mean_weight_per_expert"]
            usage.rows.append([rate, t, *(f"{w:.2f}" for w in weights)])

    def draw_heatmaps(fig: Any) -> None:
        axes = np.atleast_1d(fig.subplots(1, len(sizes.gate_dropouts)))
        for ax, rate in zip(axes, sizes.gate_dropouts, strict=True):
            grid = np.array([seed0[rate]["tasks"][t]["mean_weight_per_expert"] for t in tasks])
            image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(grid.shape[1]), [f"E{i}" for i in range(grid.shape[1])])
            ax.set_yticks(range(len(tasks)), tasks)
            for (i, j), w in np.ndenumerate(grid):
                ax.text(j, i, f"{w:.2f}", ha="center", va="center", color="w" if w < 0.6 else "k", fontsize=8)
            ax.set_title(f"gate_dropout {rate}")
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="mean gate weight")

    def draw_distributions(fig: Any) -> None:
        first = seed0
        axes = np.atleast_2d(fig.subplots(len(sizes.gate_dropouts), len(tasks), sharey=True, squeeze=False))
        for row, rate in enumerate(sizes.gate_dropouts):
            for col, t in enumerate(tasks):
                w = np.asarray(first[rate]["sample"][t])
                ax = axes[row, col]
                ax.boxplot([w[:, i] for i in range(w.shape[1])], showfliers=False)
                ax.set_ylim(0, 1)
                ax.axhline(POLARIZED, color="r", lw=0.6, ls="--")
                if row == 0:
                    ax.set_title(t, fontsize=9)
                if col == 0:
                    ax.set_ylabel(f"dropout {rate}\nweight")
                ax.set_xticklabels([f"E{i}" for i in range(w.shape[1])], fontsize=7)

    notes = [
        f"Default MMoE ({base.model.num_experts} experts of {list(base.model.expert_units)}), "
        f"{sizes.steps} steps of batch {sizes.batch_size} on {sizes.impressions} simulated impressions; "
        f"gates read on {len(next(iter(inputs.values())))} eval impressions (position missing, no dropout).",
        "Seeds vary initialization, dropout masks and shuffling on one simulated world. Gates polarize "
        "as training goes on, so short (quick) runs understate polarization.",
    ]
    return BenchmarkResult(
        name=NAME,
        title="Expert utilization: MMoE gate weights per task, gate_dropout 0.1 vs 0.0",
        parameters={**sizes.__dict__, "num_experts": base.model.num_experts, "polarized_above": POLARIZED},
        figures={"summary": summary,
                 "runs": [{k: v for k, v in r.items() if k != "sample"} for r in runs]},
        tables=[table, spread, usage],
        plots=[Plot("heatmap", "Mean gate weight per task and expert, by gate_dropout (seed 0's model)",
                    draw_heatmaps, size=(11.0, 4.0)),
               Plot("distributions", "Distribution of each task's gate weights over experts on eval "
                    "impressions (seed 0; boxes without outliers; red: the polarization threshold)",
                    draw_distributions, size=(13.0, 5.5))],
        notes=notes,
    )
