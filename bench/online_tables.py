"""The `online` benchmark's tables beside the paper's numbers, the verdicts, the loop's plot.

Kept apart from benchmarks/online.py (which trains and runs) so the summaries can be
checked on small made-up reports without TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.report import Plot, Table, mean_sd

# The metrics the tables report: engagement and satisfaction, as expectations under the truth.
ENGAGEMENT = "true_watch_time_per_request"
SATISFACTION = "true_likes_per_request"
# Zhao et al., RecSys 2019, Table 2 (relative to shared-bottom at 3.7M multiplications) and
# Table 3 (engagement relative to no position-bias modelling), live YouTube traffic.
PAPER_TABLE2 = {
    "shared_bottom_4": {"multiplications": "3.7M", ENGAGEMENT: None, SATISFACTION: None},
    "shared_bottom_8": {"multiplications": "6.1M", ENGAGEMENT: 0.001, SATISFACTION: 0.0189},
    "mmoe_4": {"multiplications": "3.7M", ENGAGEMENT: 0.0020, SATISFACTION: 0.0122},
    "mmoe_8": {"multiplications": "6.1M", ENGAGEMENT: 0.0045, SATISFACTION: 0.0307},
}
PAPER_TABLE3 = {"input_feature": -0.0007, "shallow_tower": 0.0024}
# The orderings the paper's tables show: (better, worse) at equal multiplications, and
# the position modes' order.
PAPER_ORDERINGS_2 = (("mmoe_4", "shared_bottom_4"), ("mmoe_8", "shared_bottom_8"), ("mmoe_8", "mmoe_4"))
PAPER_ORDERINGS_3 = (("shallow_tower", "none"), ("shallow_tower", "input_feature"), ("none", "input_feature"))


def relative_changes(reports: Sequence[dict[str, Any]], arm: str, metric: str) -> dict[str, Any]:
    """Mean ± sd over seeds of the arm's relative change vs the control, and how many seeds'
    intervals exclude 0 on the positive side."""
    diffs = [r["differences"][arm][metric] for r in reports]
    stat = mean_sd([d["relative"] for d in diffs])
    stat["significant_gains"] = sum(d["significant"] and d["delta"] > 0 for d in diffs)
    return stat


def arm_values(reports: Sequence[dict[str, Any]], arm: str, metric: str) -> dict[str, Any]:
    return mean_sd([r["arms"][arm]["metrics"][metric]["value"] for r in reports])


def _pct(stat: dict[str, Any]) -> str:
    if not math.isfinite(stat["mean"]):
        return "—"
    sd = f" ± {100 * stat['sd']:.2f}" if math.isfinite(stat["sd"]) else ""
    return f"{100 * stat['mean']:+.2f}{sd}% [{stat['significant_gains']}/{stat['n']}]"


def _paper(x: float | None) -> str:
    return "baseline" if x is None else f"{100 * x:+.2f}%"


def verdicts(reports: Sequence[dict[str, Any]], orderings: Sequence[tuple[str, str]],
             metrics: Sequence[str]) -> list[str]:
    """One plain sentence per (ordering, metric): does the simulation order the arms as the
    paper does (mean over seeds)? The tables' [k/n] say in how many seeds a change was significant."""
    out = []
    for better, worse in orderings:
        for metric in metrics:
            a, b = arm_values(reports, better, metric)["mean"], arm_values(reports, worse, metric)["mean"]
            agree = a > b
            out.append(f"{metric}: the paper has {better} above {worse}; here "
                       f"{better} {'>' if agree else '<='} {worse} ({a:.4g} vs {b:.4g}, mean over "
                       f"{len(reports)} seed(s)): the ordering {'agrees' if agree else 'does NOT agree'}.")
    return out


def table2(t2: dict[str, Any], control: str) -> Table:
    reports = t2["reports"]
    table = Table(f"Table 2, simulated: MMoE vs shared-bottom at equal multiplications (Δ vs {control})",
                  ["model", "multiply-adds / candidate", "width", "engagement Δ% (sim)",
                   "engagement Δ% (paper)", "satisfaction Δ% (sim)", "satisfaction Δ% (paper)"])
    for arm in ("shared_bottom_4", "mmoe_4", "shared_bottom_8", "mmoe_8"):
        paper = PAPER_TABLE2[arm]
        sim = ["baseline", "baseline"] if arm == control else [
            _pct(relative_changes(reports, arm, m)) for m in (ENGAGEMENT, SATISFACTION)]
        table.rows.append([arm, f"{t2['multiplications'][arm]:,} (paper {paper['multiplications']})",
                           t2["widths"][arm][0], sim[0], _paper(paper[ENGAGEMENT]), sim[1],
                           _paper(paper[SATISFACTION])])
    logging_row = [_pct(relative_changes(reports, "logging", m)) for m in (ENGAGEMENT, SATISFACTION)]
    table.rows.append(["logging policy (reference)", "—", "—", logging_row[0], "—", logging_row[1], "—"])
    for sentence in verdicts(reports, PAPER_ORDERINGS_2, (ENGAGEMENT, SATISFACTION)):
        table.rows.append(["verdict", "", "", sentence, "", "", ""])
    return table


def table3(t3: dict[str, Any], control: str) -> Table:
    reports = t3["reports"]
    modes = [a for a in reports[0]["arms"] if a != "logging"]
    table = Table(f"Table 3, simulated: position debiasing after the closed loop (engagement Δ vs {control})",
                  ["position mode", "engagement Δ% (sim)", "engagement Δ% (paper)", "satisfaction Δ% (sim)"])
    for mode in modes:
        cells = ["baseline", "baseline"] if mode == control else [
            _pct(relative_changes(reports, mode, m)) for m in (ENGAGEMENT, SATISFACTION)]
        paper = "baseline" if mode == control else _paper(PAPER_TABLE3.get(mode))
        table.rows.append([mode, cells[0], paper, cells[1]])
    orderings = [o for o in PAPER_ORDERINGS_3 if o[0] in modes and o[1] in modes]
    for sentence in verdicts(reports, orderings, (ENGAGEMENT,)):
        table.rows.append(["verdict", sentence, "", ""])
    return table


def loop_plot(t3: dict[str, Any], modes: Sequence[str]) -> Plot:
    """Per-day true engagement and satisfaction of the closed loop, per position mode (mean over seeds)."""
    metrics = ("true_watch_time_per_request", "true_likes_per_request", "true_dismiss_rate")

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, len(metrics))
        for ax, metric in zip(axes, metrics, strict=True):
            for mode in modes:
                per_seed = [[day[metric] for day in seed[mode]] for seed in t3["curves"]]
                days = range(1, len(per_seed[0]) + 1)
                mean = [sum(v) / len(v) for v in zip(*per_seed, strict=True)]
                ax.plot(days, mean, marker="o", label=mode)
            ax.set_xlabel("closed-loop day")
            ax.set_title(metric.replace("_", " "), fontsize=9)
        axes[0].legend()

    return Plot("closed_loop", "Closed loop: true metrics of each day's served ranking, per position mode "
                "(mean over seeds; day 1 is served by the logging policy)", draw, size=(12.0, 4.0))
