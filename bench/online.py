"""The paper's online tables, as simulated live experiments (Zhao et al., RecSys 2019).

Table 2 (MMoE vs shared-bottom at equal multiplications): on one simulated world, each
seed trains MMoE with 4 and with 8 experts and two shared-bottom models whose width is
chosen so their multiply-adds per candidate match the MMoEs' (models.model.
multiplications_per_example); every model is exported as it is pushed (serving_default
with the Transform graph) and ranks live traffic in one experiment (experiment/live.py,
users split by hash), the small shared-bottom being the control and the world's logging
policy a reference arm. Engagement is watch time per request, satisfaction likes per
request, both as expectations under the simulator's truth for the shown slates (the same
comparison as the drawn outcomes, with less noise; the drawn ones are in the JSON).

Table 3 (position debiasing after a closed loop): for each position mode the daily job
(the real pipeline, `watchnext backfill` of each day) trains on logs its own previous
model served (experiment/loop.py) for `loop_days` days; the three final models then meet
in one experiment, `none` (no position modelling, the paper's baseline) the control.
Seeds vary the world there (the pipeline's training is seeded by its config).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.online_tables import loop_plot, table2, table3
from bench.report import BenchmarkResult
from watchnext.core.config import DEFAULT_HEADS, Config, load_config
from watchnext.experiment.live import ExperimentParams, run_experiment
from watchnext.experiment.loop import run_closed_loop
from watchnext.experiment.report import LOGGING_ARM
from watchnext.experiment.served import ServedModelPolicy
from watchnext.models.export import export_model
from watchnext.models.model import multiplications_per_example
from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.simulate import logging_policy, params_from_data_config

NAME = "online"
# Table 2's arms: (name, architecture, experts); the shared-bottom widths are matched to the MMoEs'.
MMOE_ARMS = (("mmoe_4", 4), ("mmoe_8", 8))
CONTROL_2 = "shared_bottom_4"
CONTROL_3 = "none"


@dataclass(frozen=True)
class Sizes(common.TrainingSizes):
    # Live traffic of each experiment.
    requests_per_day: int = 3000
    experiment_days: int = 1
    # Table 3: closed-loop days per position mode, and the daily job's data and training.
    loop_days: int = 3
    loop_impressions: int = 20000
    # 0: the daily job's own budget (training.epochs with early stopping). A fixed step count
    # overfits a small day: 100 steps on 3,240 examples is 31 epochs, and the last weights are kept.
    loop_train_steps: int = 300
    position_modes: tuple[str, ...] = ("none", "input_feature", "shallow_tower")
    # Run Table 3 (each loop day is a pipeline run: minutes each on 2 cores).
    closed_loop: bool = True


SIZES = {
    "smoke": Sizes(impressions=400, steps=3, seeds=1, batch_size=32, run_eagerly=True, requests_per_day=300,
                   loop_days=1, loop_impressions=2000, loop_train_steps=5, closed_loop=False),
    "quick": Sizes(impressions=10000, steps=300, seeds=3, requests_per_day=3000, loop_days=2,
                   loop_impressions=4000, loop_train_steps=0),
    "full": Sizes(impressions=40000, steps=600, seeds=3, requests_per_day=20000, experiment_days=2,
                  loop_days=30, loop_impressions=20000, loop_train_steps=0),
}


def matched_width(base: Config, vocab: dict[str, int], target: int) -> tuple[int, int]:
    """(width, multiplications) of the shared-bottom MLP whose count is closest to `target`."""
    def macs(width: int) -> int:
        return multiplications_per_example(common.with_model(base, architecture="shared_bottom",
                                                             expert_units=(width,)), vocab)

    lo, hi = 1, 8
    while macs(hi) < target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # the count grows with the width: bisect to the bracketing pair
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if macs(mid) < target else (lo, mid)
    return min(((w, macs(w)) for w in (lo, hi)), key=lambda wm: abs(wm[1] - target))


def architecture_arms(base: Config, vocab: dict[str, int]) -> dict[str, tuple[Config, int]]:
    """Table 2's models: name → (config, multiplications per candidate)."""
    arms: dict[str, tuple[Config, int]] = {}
    for name, experts in MMOE_ARMS:
        config = common.with_model(base, architecture="mmoe", num_experts=experts)
        target = multiplications_per_example(config, vocab)
        width, macs = matched_width(base, vocab, target)
        arms[f"shared_bottom_{experts}"] = (common.with_model(base, architecture="shared_bottom",
                                                              expert_units=(width,)), macs)
        arms[name] = (config, target)
    return arms


def run_table2(context: common.Context, sizes: Sizes) -> dict[str, Any]:
    base = Config()
    sim = context.simulation(sizes.impressions, sizes.sim_seed, base)
    world = SimulatorParams(seed=sizes.sim_seed, impressions_per_day=sizes.impressions)
    models = architecture_arms(base, sim.vocab_sizes())
    weights = [h.score_weight for h in base.heads]
    reports = []
    for seed in range(sizes.seeds):
        arms: dict[str, Any] = {}
        for name, (config, _) in sorted(models.items(), key=lambda kv: kv[0] != CONTROL_2):
            trained = common.train(sim, config, sizes.steps, seed, sizes.batch_size, sizes.run_eagerly)
            export_dir = os.path.join(context.work_dir, "online", f"seed-{seed}", name)
            export_model(trained.model, sim.tf_transform_output(), config, export_dir)
            arms[name] = ServedModelPolicy(export_dir, config.head_names, weights)
        arms[LOGGING_ARM] = logging_policy(world)
        params = ExperimentParams(days=sizes.experiment_days, requests_per_day=sizes.requests_per_day,
                                  seed=seed)
        reports.append(run_experiment(arms, world, params, control=CONTROL_2))
    return {"multiplications": {n: m for n, (_, m) in models.items()},
            "widths": {n: list(c.model.expert_units) for n, (c, _) in models.items()}, "reports": reports}


def loop_config(out_dir: str, sizes: Sizes, mode: str, seed: int) -> Config:
    """The daily job's config of one closed loop. The blessing's absolute AUC floors are off
    (heads' value_threshold 0), so a small model is pushed whenever it does not regress."""
    return load_config(None, {
        "pipeline": {"output_dir": out_dir},
        "data": {"simulate_impressions_per_day": sizes.loop_impressions,
                 "simulate_seed": sizes.sim_seed + seed},
        "model": {"position_mode": mode},
        "training": {"train_steps": sizes.loop_train_steps},
        "heads": [dict(dataclasses.asdict(h), value_threshold=0.0) for h in DEFAULT_HEADS],
    })


def run_table3(context: common.Context, sizes: Sizes) -> dict[str, Any]:
    curves: list[dict[str, list[dict[str, Any]]]] = []
    reports = []
    for seed in range(sizes.seeds):
        finals: dict[str, str | None] = {}
        curves.append({})
        world: SimulatorParams | None = None
        for mode in sizes.position_modes:
            out_dir = os.path.join(context.work_dir, "loop", f"seed-{seed}", mode)
            config = loop_config(out_dir, sizes, mode, seed)
            world = params_from_data_config(config.data)
            days = run_closed_loop(config, world, sizes.loop_days)
            curves[-1][mode] = days
            finals[mode] = days[-1]["pushed"]
        assert world is not None
        missing = [m for m, path in finals.items() if path is None]
        if missing:
            raise RuntimeError(f"seed {seed}: no model was ever pushed for position modes {missing}")
        weights = [h.score_weight for h in DEFAULT_HEADS]
        arms: dict[str, Any] = {mode: ServedModelPolicy(str(finals[mode]), [h.name for h in DEFAULT_HEADS],
                                                        weights) for mode in sizes.position_modes}
        arms[LOGGING_ARM] = logging_policy(world)
        params = ExperimentParams(days=sizes.experiment_days, requests_per_day=sizes.requests_per_day,
                                  seed=seed)
        reports.append(run_experiment(arms, dataclasses.replace(world, days=sizes.loop_days), params,
                                      control=CONTROL_3))
    return {"curves": curves, "reports": reports}


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    t2 = run_table2(context, sizes)
    tables, notes, plots = [table2(t2, CONTROL_2)], [], []
    figures: dict[str, Any] = {"table2": t2}
    if sizes.closed_loop:
        t3 = run_table3(context, sizes)
        figures["table3"] = t3
        tables.append(table3(t3, CONTROL_3))
        plots.append(loop_plot(t3, sizes.position_modes))
    else:
        notes.append("Table 3 (the closed loop) was not run at this size (closed_loop is off).")
    notes += [
        f"Table 2: {sizes.seeds} seed(s) on one world (seed {sizes.sim_seed}, {sizes.impressions} logged "
        f"impressions); each seed trains every model ({sizes.steps} steps of {sizes.batch_size}) and runs "
        f"one experiment of {sizes.experiment_days} day(s) × {sizes.requests_per_day} requests split by user "
        "hash over all arms.",
        "Δ% cells: mean ± sd over seeds of the relative change vs the control; [k/n]: seeds whose "
        "95 % interval (per-user delta method) lies above 0 (a significant gain).",
        "Paper figures: Zhao et al., RecSys 2019, Tables 2 and 3 (live YouTube traffic), as quoted here.",
    ]
    if sizes.closed_loop:
        notes.append(f"Table 3: {sizes.loop_days} closed-loop day(s) per mode of {sizes.loop_impressions} "
                     f"impressions, the daily job training {sizes.loop_train_steps or 'epochs-based'} steps; "
                     "the world varies with the seed.")
    return BenchmarkResult(name=NAME, title="Simulated live experiments: the paper's Tables 2 and 3",
                           parameters=dict(sizes.__dict__), figures=figures, tables=tables, plots=plots,
                           notes=notes)
