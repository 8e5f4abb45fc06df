"""Task correlation: how the satisfaction (like) head fares as engagement and satisfaction drift apart.

The simulator's `task_correlation` c is the cosine between the engagement and satisfaction
weight vectors (Ma et al., KDD'18's synthetic setup). For each c a world is simulated and
featurized, and MMoE, shared_bottom and OMoE are trained on it; the like head's AUC is
compared with the oracle's (the simulator's true P(like) on the same eval impressions) as
(AUC − 0.5) / (AUC_oracle − 0.5), so worlds whose like label is easier or harder stay
comparable. MMoE's claim is that its advantage over a shared bottom grows as c falls.

Each c is its own world (same simulator seed, so the same users, videos and engagement
weights; only the satisfaction weights turn), so the like label's base rate and the
oracle's AUC change with c: the share, not the raw AUC, is the figure to compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, fmt, mean_sd
from watchnext.core.config import Config
from watchnext.pipeline import oracle_scores

import numpy as np

NAME = "task_correlation"
SATISFACTION_HEAD = "like"


@dataclass(frozen=True)
class Sizes(common.TrainingSizes):
    correlations: tuple[float, ...] = (1.0, 0.8, 0.5, 0.2)
    architectures: tuple[str, ...] = ("mmoe", "shared_bottom", "omoe")


SIZES = {
    "smoke": Sizes(impressions=400, steps=2, seeds=1, batch_size=32, correlations=(1.0, 0.2),
                   architectures=("mmoe", "shared_bottom"), run_eagerly=True),
    "quick": Sizes(impressions=10000, steps=300, seeds=1),
    "full": Sizes(impressions=40000, steps=600, seeds=3),
}


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    base = Config()
    heads = oracle_scores.binary_heads(base)
    if SATISFACTION_HEAD not in heads:
        raise ValueError(f"task_correlation reads the {SATISFACTION_HEAD!r} head; binary heads are {heads}")

    worlds: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    for c in sizes.correlations:
        sim = context.simulation(sizes.impressions, sizes.sim_seed, base, task_correlation=c)
        oracle = common.oracle_aucs(sim, heads)
        label = sim.eval_labels[base.head(SATISFACTION_HEAD).label]
        worlds[str(c)] = {"oracle_auc": oracle, "counts": sim.counts,
                          "like_positives": int(np.sum(label > 0.5)),
                          "like_null_auc_se": oracle_scores.null_auc_standard_error(label)}
        inputs = sim.eval_features(position=True)
        for arch in sizes.architectures:
            config = common.with_model(base, architecture=arch)
            for seed in range(sizes.seeds):
                trained = common.train(sim, config, sizes.steps, seed, sizes.batch_size, sizes.run_eagerly)
                auc = common.binary_aucs(sim, oracle_scores.predict(trained.model, inputs), heads)
                runs.append({"task_correlation": c, "architecture": arch, "seed": seed, "auc": auc,
                             "oracle_share": {h: common.oracle_share(auc[h], oracle[h]) for h in heads},
                             "train_seconds": trained.seconds})

    summary: dict[str, dict[str, Any]] = {}
    for c in sizes.correlations:
        summary[str(c)] = {}
        for arch in sizes.architectures:
            mine = [r for r in runs if r["task_correlation"] == c and r["architecture"] == arch]
            summary[str(c)][arch] = {h: {"auc": mean_sd([r["auc"][h] for r in mine]),
                                         "oracle_share": mean_sd([r["oracle_share"][h] for r in mine])}
                                     for h in heads}

    like = SATISFACTION_HEAD
    table = Table(f"{like} head: AUC (share of the oracle's gap closed) by task correlation",
                  ["task_correlation", "oracle AUC", "eval positives", "null-AUC se",
                   *sizes.architectures])
    def cell(c: float, arch: str, head: str) -> str:
        stats = summary[str(c)][arch][head]
        return f"{fmt(stats['auc'])} ({fmt(stats['oracle_share'])})"

    for c in sizes.correlations:
        w = worlds[str(c)]
        table.rows.append([c, f"{w['oracle_auc'][like]:.3f}", w["like_positives"],
                           f"{w['like_null_auc_se']:.3f}", *(cell(c, a, like) for a in sizes.architectures)])
    click = Table("click head, same runs: AUC (share)",
                  ["task_correlation", "oracle AUC", *sizes.architectures])
    for c in sizes.correlations:
        click.rows.append([c, f"{worlds[str(c)]['oracle_auc']['click']:.3f}",
                           *(cell(c, a, "click") for a in sizes.architectures)])

    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        cs = list(sizes.correlations)
        for arch in sizes.architectures:
            for ax, key in ((ax1, "oracle_share"), (ax2, "auc")):
                stats = [summary[str(c)][arch][like][key] for c in cs]
                ax.errorbar(cs, [s["mean"] for s in stats], yerr=[np.nan_to_num(s["sd"]) for s in stats],
                            marker="o", capsize=3, label=arch)
        ax2.plot(cs, [worlds[str(c)]["oracle_auc"][like] for c in cs], "k--", label="oracle")
        ax1.set_ylabel(f"{like}: (AUC − 0.5) / (AUC_oracle − 0.5)")
        ax2.set_ylabel(f"{like} AUC")
        for ax in (ax1, ax2):
            ax.set_xlabel("task_correlation (cosine of engagement and satisfaction weights)")
            ax.invert_xaxis()
            ax.legend()

    notes = [
        f"{sizes.seeds} training seed(s) per (correlation, architecture); {sizes.steps} steps of batch "
        f"{sizes.batch_size}; {sizes.impressions} simulated impressions per world (simulator seed "
        f"{sizes.sim_seed}); AUC with the logged position, as in the oracle benchmark.",
        "The like label is click × Bernoulli(p_like), so part of its AUC comes from predicting the click; "
        "the correlation only changes the p_like part.",
        "Eval positives for like are few at quick size; differences smaller than ~2 null-AUC standard "
        "errors are noise.",
    ]
    return BenchmarkResult(
        name=NAME,
        title="Task correlation: the satisfaction (like) head vs the engagement–satisfaction correlation",
        parameters={**sizes.__dict__},
        figures={"worlds": worlds, "summary": summary, "runs": runs},
        tables=[table, click],
        plots=[Plot("like", f"{like} head: share of the oracle's AUC gap (left) and AUC (right) vs task "
                    "correlation, per architecture (mean ± sd over seeds)", draw, size=(12.0, 4.5))],
        notes=notes,
    )
