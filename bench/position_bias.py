"""Position bias: what the shallow tower learns vs the simulator's examination, and what it buys in ranking.

1. The shallow tower's bias b(position, device) against the simulator's true log examination
   log e = −eta_device · log(1 + position), over the (position, device) cells of the eval split.
   A bias is an additive logit and the main towers can absorb any constant per device (device
   is also a main input), so three figures: Pearson r over all cells as they are; r after
   subtracting each device's position-0 value (b(p, d) − b(0, d) vs log e(p, d) − log e(0, d));
   and a fitted eta per device (least squares of b(0, d) − b(p, d) on log(1 + p)) next to the true one.
   For small click probabilities logit ≈ log, so b − b(0) should track log e − log e(0).
2. NDCG@10 of the served ranking (click head, position missing, as at serving) per request of
   the eval split, with the true relevance P(click | examined) (the simulator's p_click) as
   gain, for position_mode shallow_tower vs input_feature vs none; the logged order and a
   random order as baselines; also on the shuffled requests only, where the logged order
   carries no relevance.

Both are measured under two logging policies (`policy_popularity`): one that ranks by
relevance, where position carries relevance and a biased click model is not misled by it,
and one that also promotes popular videos, where popularity is confounded with position:
the selection bias the paper's shallow tower is meant to keep out of the served ranking.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, fmt, mean_sd
from watchnext.core.config import POSITION_MODES, Config
from watchnext.models.model import device_feature
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import tensorflow as tf

NAME = "position_bias"
log = logging.getLogger("watchnext.benchmarks")
CUTOFF = 10
# The head whose served prediction ranks the slate (the simulator's relevance is P(click | examined)).
CLICK_HEAD = "click"


# An arm is a position_mode, or "shallow_tower:<model.position_bias_form>" for the shallow tower
# with another form than the paper's additive logit.
LOG_EXAMINATION_ARM = "shallow_tower:log_examination"


def arm_model(arm: str) -> dict[str, str]:
    """The `model` section fields of an arm ("none", "shallow_tower:log_examination", ...)."""
    mode, _, form = arm.partition(":")
    return {"position_mode": mode, **({"position_bias_form": form} if form else {})}


def has_tower(arm: str) -> bool:
    return arm_model(arm)["position_mode"] == "shallow_tower"


@dataclass(frozen=True)
class Sizes(common.TrainingSizes):
    modes: tuple[str, ...] = (*POSITION_MODES, LOG_EXAMINATION_ARM)
    random_orders: int = 20
    # Logging policies, as SimulatorParams.policy_popularity: 0 ranks by relevance; 1 also
    # promotes popular videos, confounding popularity with position (see the notes).
    policy_popularity: tuple[float, ...] = (0.0, 1.0)
    # steps 0 (train as run_fn: epochs + early stopping) only: training.early_stopping_patience,
    # fewer validations than the Trainer's 3 so that 24 models at 1M impressions fit an evening.
    early_stopping_patience: int = 1


SIZES = {
    "smoke": Sizes(impressions=400, steps=0, seeds=1, batch_size=32,
                   modes=("shallow_tower", LOG_EXAMINATION_ARM, "none"),
                   random_orders=2, run_eagerly=True),
    "quick": Sizes(impressions=10000, steps=300, seeds=1),
    "full": Sizes(impressions=40000, steps=600, seeds=3),
}


def eval_slots(sim: datasets.FeaturizedSimulation) -> tuple[np.ndarray, np.ndarray]:
    """Logged position (int) and device (str) of each eval example, aligned with sim.truth."""
    feats = sim.config.features
    spec = {feats.position: tf.io.FixedLenFeature([1], tf.int64),
            feats.device: tf.io.FixedLenFeature([1], tf.string)}
    parsed = tf.io.parse_example(sim.eval_raw, spec)
    return (parsed[feats.position].numpy()[:, 0],
            np.array([d.decode() for d in parsed[feats.device].numpy()[:, 0]]))


def ndcg_at(scores: np.ndarray, gains: np.ndarray, requests: np.ndarray, k: int) -> float:
    """Mean over requests of DCG@k(order by score) / DCG@k(ideal), linear gains, log2 discount."""
    by_request: dict[Any, list[int]] = defaultdict(list)
    for i, r in enumerate(requests):
        by_request[r].append(i)
    values = []
    for rows in by_request.values():
        rows_a = np.asarray(rows)
        g = gains[rows_a]
        ideal = np.sort(g)[::-1][:k]
        discount = 1.0 / np.log2(np.arange(2, len(ideal) + 2))
        best = float(np.sum(ideal * discount))
        if best <= 0:
            continue
        order = np.argsort(-scores[rows_a], kind="stable")[:k]
        values.append(float(np.sum(g[order] * discount[:len(order)])) / best)
    return float(np.mean(values)) if values else float("nan")


def device_vocabulary(sim: Any, config: Config) -> list[str]:
    """The device values in the order of Transform's vocabulary: the device ids the model sees."""
    return [t.decode() if isinstance(t, bytes) else t
            for t in sim.tf_transform_output().vocabulary_by_name(device_feature(config).vocabulary)]


def learned_bias(model: Any, positions: np.ndarray, device_ids: np.ndarray) -> np.ndarray:
    """The shallow tower's bias for each (position, device id) pair, at inference (with
    position_bias_form log_examination: the learned log examination itself)."""
    return model.shallow_tower(tf.constant(positions, tf.int64), tf.constant(device_ids, tf.int64),
                               training=False).numpy()


def bias_fit(cells: list[tuple[int, str]], bias: np.ndarray, true_log_e: np.ndarray) -> dict[str, Any]:
    """Pearson r (raw and relative to position 0 per device) and a fitted eta per device."""
    out: dict[str, Any] = {"pearson_r": float(np.corrcoef(bias, true_log_e)[0, 1])}
    rel_b, rel_e, eta = [], [], {}
    for device in sorted({d for _, d in cells}):
        idx = [i for i, (_, d) in enumerate(cells) if d == device]
        zero = [i for i in idx if cells[i][0] == 0]
        if not zero or len(idx) < 2:
            continue
        b = bias[idx] - bias[zero[0]]
        e = true_log_e[idx] - true_log_e[zero[0]]
        rel_b += b.tolist()
        rel_e += e.tolist()
        x = np.log1p(np.array([cells[i][0] for i in idx], dtype=np.float64))
        eta[device] = {"fitted": float(np.sum(-b * x) / np.sum(x * x)),
                       "true": float(np.sum(-e * x) / np.sum(x * x))}
    out["pearson_r_relative"] = float(np.corrcoef(rel_b, rel_e)[0, 1]) if len(rel_b) > 2 else float("nan")
    out["eta"] = eta
    return out


def arm_label(arm: str) -> str:
    """How tables name an arm: "position_mode none", "shallow_tower, log_examination form"."""
    fields = arm_model(arm)
    form = fields.get("position_bias_form")
    return f"position_mode {fields['position_mode']}" + (f", {form} form" if form else "")


def world_label(weight: float) -> str:
    """How tables name a logging policy (SimulatorParams.policy_popularity)."""
    return "relevance policy" if weight == 0 else f"popularity policy {weight:g}"


def measure_world(context: common.Context, sizes: Sizes, base: Config, weight: float) -> dict[str, Any]:
    """Every position_mode × seed trained and scored on one simulated world (one logging policy)."""
    overrides = {"policy_popularity": weight} if weight else {}  # 0: the default world's cache key
    sim = context.simulation(sizes.impressions, sizes.sim_seed, base, **overrides)
    head = CLICK_HEAD
    # steps 0: train as run_fn does (epochs, early stopping on one half of the eval requests)
    # and score only the other half; else a fixed step budget, scored on every eval request.
    converged = sizes.steps == 0
    halves = common.eval_halves(sim) if converged else None
    validation = halves.validation if halves else None
    rows = halves.test_rows if halves else np.ones(len(sim.eval_keys), bool)
    positions, devices = (a[rows] for a in eval_slots(sim))
    requests = np.array([k[0] for k in sim.eval_keys])[rows]
    relevance = sim.truth["p_click"][rows]  # P(click | examined): the position-free relevance
    shuffled = sim.truth["shuffled"][rows] > 0.5
    log_e = np.log(sim.truth["examination"][rows])
    clicks = sim.eval_labels[sim.config.head(head).label][rows]
    cells = sorted({(int(p), str(d)) for p, d in zip(positions, devices, strict=True)})
    cell_log_e = np.array([float(np.mean(log_e[(positions == p) & (devices == d)])) for p, d in cells])
    vocabulary = device_vocabulary(sim, base)
    device_id = {d: vocabulary.index(d) for d in {d for _, d in cells}}
    served_inputs = {k: v[rows] for k, v in sim.eval_features(position=False).items()}

    subsets = {"all": np.ones(len(requests), bool), "shuffled": shuffled}
    rng = np.random.default_rng(0)
    baselines: dict[str, dict[str, float]] = {}
    for subset, mask in subsets.items():
        if not mask.any():
            continue
        logged = ndcg_at(-positions[mask].astype(float), relevance[mask], requests[mask], CUTOFF)
        random = np.mean([ndcg_at(rng.random(int(mask.sum())), relevance[mask], requests[mask], CUTOFF)
                          for _ in range(sizes.random_orders)])
        baselines[subset] = {"logged_order": logged, "random_order": float(random)}

    runs: list[dict[str, Any]] = []
    bias_tables: dict[str, list[dict[str, Any]]] = {}
    for mode in sizes.modes:
        config = common.with_model(base, **arm_model(mode))
        if converged:
            config = config.replace(training=dataclasses.replace(
                config.training, early_stopping_patience=sizes.early_stopping_patience))
        for seed in range(sizes.seeds):
            log.info("position_bias: %s, arm %s, seed %d", world_label(weight), mode, seed)
            trained = (common.train_converged(sim, config, seed, validation, sizes.run_eagerly) if converged
                       else common.train(sim, config, sizes.steps, seed, sizes.batch_size, sizes.run_eagerly))
            served = oracle_scores.predict(trained.model, served_inputs)[head]
            row: dict[str, Any] = {"position_mode": mode, "seed": seed, "train_seconds": trained.seconds,
                                   "steps": trained.steps, "best_step": trained.best_step,
                                   "served_click_auc": oracle_scores.auc(served, clicks),
                                   "ndcg": {s: ndcg_at(served[m], relevance[m], requests[m], CUTOFF)
                                            for s, m in subsets.items() if m.any()}}
            if has_tower(mode):
                bias = learned_bias(trained.model, np.array([p for p, _ in cells]),
                                    np.array([device_id[d] for _, d in cells]))
                row["bias_fit"] = bias_fit(cells, bias, cell_log_e)
                bias_tables.setdefault(mode, []).append({"seed": seed, "bias": bias.tolist()})
            runs.append(row)

    summary: dict[str, Any] = {}
    for mode in sizes.modes:
        mine = [r for r in runs if r["position_mode"] == mode]
        summary[mode] = {"ndcg": {s: mean_sd([r["ndcg"][s] for r in mine]) for s in baselines},
                         "served_click_auc": mean_sd([r["served_click_auc"] for r in mine])}
        if has_tower(mode):
            fits = [r["bias_fit"] for r in mine]
            summary[mode]["pearson_r"] = mean_sd([f["pearson_r"] for f in fits])
            summary[mode]["pearson_r_relative"] = mean_sd([f["pearson_r_relative"] for f in fits])
            summary[mode]["eta"] = {
                d: {"fitted": mean_sd([f["eta"][d]["fitted"] for f in fits if d in f["eta"]]),
                    "true": fits[0]["eta"][d]["true"]}
                for d in (fits[0]["eta"] if fits else {})}
    return {"policy_popularity": weight, "summary": summary, "baselines": baselines, "runs": runs,
            "cells": cells, "cell_true_log_examination": cell_log_e,
            "cell_counts": {f"{p}/{d}": int(np.sum((positions == p) & (devices == d))) for p, d in cells},
            "learned_bias": bias_tables, "eval_impressions": len(requests), "eval_split": len(rows),
            "requests": len(set(requests)),
            "shuffled_impressions": int(shuffled.sum())}


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    base = Config()
    if CLICK_HEAD not in oracle_scores.binary_heads(base):
        raise ValueError(f"position_bias ranks by the {CLICK_HEAD!r} head; the config's binary heads are "
                         f"{oracle_scores.binary_heads(base)}")
    worlds = [measure_world(context, sizes, base, w) for w in sizes.policy_popularity]
    subsets = list(worlds[0]["baselines"])

    columns = [f"{world_label(w['policy_popularity'])}: {s} requests" for w in worlds for s in subsets]
    ndcg_table = Table(f"NDCG@{CUTOFF} of the served ranking (click head, position missing); gain = true "
                       "P(click | examined); one column pair per logging policy",
                       ["ranking", *columns, *(f"served click AUC ({world_label(w['policy_popularity'])})"
                                               for w in worlds)])
    for mode in sizes.modes:
        ndcg_table.rows.append([arm_label(mode),
                                *(fmt(w["summary"][mode]["ndcg"][s]) for w in worlds for s in subsets),
                                *(fmt(w["summary"][mode]["served_click_auc"]) for w in worlds)])
    for name in ("logged_order", "random_order"):
        ndcg_table.rows.append([name.replace("_", " "),
                                *(f"{w['baselines'][s][name]:.3f}" for w in worlds for s in subsets),
                                *("—" for _ in worlds)])
    tables = [ndcg_table]
    towers = [m for m in sizes.modes if has_tower(m)]
    if towers:
        rows = []
        for w in worlds:
            label = world_label(w["policy_popularity"])
            summaries = [w["summary"][m] for m in towers]
            rows += [[f"{label}: Pearson r over (position, device) cells",
                      *(fmt(st["pearson_r"]) for st in summaries)],
                     [f"{label}: Pearson r, relative to position 0 per device",
                      *(fmt(st["pearson_r_relative"]) for st in summaries)]]
            rows += [[f"{label}: eta {d} fitted (true {v['true']:.2f})",
                      *(fmt(st["eta"][d]["fitted"], 2) if d in st["eta"] else "—" for st in summaries)]
                     for d, v in summaries[0]["eta"].items()]
        tables.append(Table("Shallow-tower bias vs the true log examination",
                            ["figure", *(arm_label(m) for m in towers)], rows))

    first = worlds[0]
    t = base.training
    budget = (f"trained as the Trainer's run_fn trains (batch {t.batch_size}, lr {t.learning_rate}, up to "
              f"{t.epochs} epochs, validation each epoch on the eval requests of one CRC32 half, early "
              f"stopping after {sizes.early_stopping_patience} validation(s) without improvement, best "
              "weights restored; steps run per model in the JSON), scored on the other half only"
              if sizes.steps == 0 else f"{sizes.steps} steps of batch {sizes.batch_size}")
    notes = [
        f"{sizes.seeds} seed(s) per position_mode and logging policy, {budget}, on {sizes.impressions} "
        f"simulated impressions per policy ({first['eval_impressions']} scored eval impressions, "
        f"{first['requests']} requests, {first['shuffled_impressions']} impressions in shuffled requests).",
        "Logging policies (SimulatorParams.policy_popularity = w): the policy ranks a request's candidates "
        "by relevance + w · standardized log popularity + noise. w = 0 ranks by relevance, so position "
        "carries relevance; w > 0 promotes popular videos beyond their relevance, so popularity (visible "
        "to the model as video_log_views) is confounded with position: the selection bias a "
        "position-debiased model should not learn.",
        f"Cells: {len(first['cells'])} (position, device) pairs seen in the eval split; eval impressions per "
        "cell are in the JSON (cell_counts); rare cells (tv, tablet at deep positions) carry little signal.",
        "Slates have 10 candidates, so NDCG@10 ranks the whole slate: it measures order, not retrieval.",
        "The served ranking of position_mode none is the plain click model (position bias absorbed into "
        "whatever features correlate with position); input_feature serves with position 'missing'.",
        "position_bias_form: logit (the paper) adds the tower's output b to the logits of the heads with "
        f"position_bias ({', '.join(h.name for h in base.heads if h.position_bias)}); log_examination "
        "makes the tower output log P(examined) = log sigmoid(b) and predicts "
        "P(click) = P(examined) · sigmoid(click logit), the simulator's own form. For the logit form the "
        "bias is compared with log examination as it is (logit ≈ log for rare clicks).",
    ]

    plots = []
    if first["learned_bias"]:
        cells, cell_log_e = first["cells"], first["cell_true_log_examination"]
        learned = {arm: np.asarray(tables_[0]["bias"]) for arm, tables_ in first["learned_bias"].items()}

        def draw_bias(fig: Any) -> None:
            axes = np.atleast_2d(fig.subplots(len(learned), 2, squeeze=False))
            for (arm, bias0), (ax1, ax2) in zip(learned.items(), axes, strict=True):
                for device in sorted({d for _, d in cells}):
                    idx = [i for i, (_, d) in enumerate(cells) if d == device]
                    zero = [i for i in idx if cells[i][0] == 0]
                    if not zero:
                        continue
                    ps = [cells[i][0] for i in idx]
                    line = ax1.plot(ps, cell_log_e[idx] - cell_log_e[zero[0]], "-", label=f"{device} true")[0]
                    ax1.plot(ps, bias0[idx] - bias0[zero[0]], "o", color=line.get_color(),
                             label=f"{device} learned")
                ax1.set_xlabel("position")
                ax1.set_ylabel("relative to position 0")
                ax1.set_title(f"{arm_label(arm)}: log examination (lines), learned (dots)", fontsize=9)
                ax1.legend(fontsize=7, ncol=2)
                ax2.scatter(cell_log_e, bias0, s=12)
                ax2.set_xlabel("true log examination")
                ax2.set_ylabel("learned bias")
                r = bias_fit(cells, bias0, cell_log_e)["pearson_r"]
                ax2.set_title(f"r = {r:.3f} (seed 0)", fontsize=9)

        caption = ("Shallow-tower bias vs true log examination per position and device "
                   f"({world_label(first['policy_popularity'])}, seed 0)")
        plots.append(Plot("bias", caption, draw_bias, size=(11.0, 4.5 * len(learned))))

    def draw_ndcg(fig: Any) -> None:
        axes = np.atleast_1d(fig.subplots(1, len(worlds), sharey=True))
        labels = [*(arm_label(m) for m in sizes.modes), "logged order", "random order"]
        width = 0.8 / max(1, len(subsets))
        x = np.arange(len(labels))
        for ax, w in zip(axes, worlds, strict=True):
            for i, s in enumerate(subsets):
                values = ([w["summary"][m]["ndcg"][s]["mean"] for m in sizes.modes]
                          + [w["baselines"][s]["logged_order"], w["baselines"][s]["random_order"]])
                errors = [np.nan_to_num(w["summary"][m]["ndcg"][s]["sd"]) for m in sizes.modes] + [0, 0]
                ax.bar(x + (i - (len(subsets) - 1) / 2) * width, values, width, yerr=errors, capsize=3,
                       label=f"{s} requests")
            ax.set_xticks(x, labels, rotation=30, ha="right")
            ax.set_title(world_label(w["policy_popularity"]))
            ax.set_ylim(0.6, 1.0)
        axes[0].set_ylabel(f"NDCG@{CUTOFF} (gain: true P(click | examined))")
        axes[0].legend()

    plots.append(Plot("ndcg", f"NDCG@{CUTOFF} of the served ranking by position_mode and logging policy, "
                      "with the logged and a random order", draw_ndcg, size=(5.5 * len(worlds), 4.5)))

    figures = {"worlds": [{**w, "cells": [f"{p}/{d}" for p, d in w["cells"]]} for w in worlds]}
    return BenchmarkResult(
        name=NAME,
        title="Position bias: shallow-tower bias vs true examination, and NDCG@10 by position_mode",
        parameters={**sizes.__dict__, "cutoff": CUTOFF},
        figures=figures, tables=tables, plots=plots, notes=notes,
    )
