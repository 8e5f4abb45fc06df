"""PNG plots beside report.md: ROC and calibration per head, the learned position curve, the gates.

A table of AUCs says whether a head ranks; the curves say how: where the ROC bends,
whether the predictions are calibrated across their range (the Evaluator's bins), how
steeply the shallow tower's bias falls with position on each device, and how each task's
gate spreads its weight over the experts. Each plot is drawn from data the Evaluator and
the Trainer already wrote (metrics.json, training.json, expert_utilization.json); nothing
is recomputed. matplotlib runs headless (Agg) so a daily job on a server can draw them.
"""

from __future__ import annotations

import os
from typing import Any

# Folder, next to report.md, that holds the PNGs (report.md links them relatively).
PLOTS_DIR = "report_plots"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, PLOTS_DIR, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return os.path.join(PLOTS_DIR, name)


def head_plot(out_dir: str, head: str, head_type: str, curves: dict[str, Any]) -> str | None:
    """`<head>.png`: ROC (binary heads) and calibration (both); None when there is no curve data."""
    calibration, roc = curves.get("calibration"), curves.get("roc")
    if not calibration and not roc:
        return None
    plt = _pyplot()
    panels = [p for p in ("roc", "calibration") if curves.get(p)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "roc":
            ax.plot(roc["fpr"], roc["tpr"], lw=1.8)
            ax.plot([0, 1], [0, 1], ls=":", c="grey")
            ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{head}: ROC")
        else:
            pred, label = calibration["mean_prediction"], calibration["mean_label"]
            ax.plot(pred, label, marker="o", lw=1.5)
            lo, hi = min(pred + label), max(pred + label)
            ax.plot([lo, hi], [lo, hi], ls=":", c="grey")
            unit = "probability" if head_type == "binary" else "label units"
            ax.set(xlabel=f"mean prediction ({unit})", ylabel="mean label",
                   title=f"{head}: calibration ({len(pred)} equal-count bins)")
    return _save(fig, out_dir, f"{head}.png")


def position_plot(out_dir: str, curve: dict[str, Any] | None, last_seen: int | None = None) -> str | None:
    """`position_bias.png`: the shallow tower's bias logit by position, one line per device.

    `last_seen`: the highest position the evaluated logs hold. The tower has a bias for every
    position up to model.max_position, but one never shown keeps its initial value and would
    draw a jump that means nothing, so the curve stops there.
    """
    if not curve or not curve.get("bias"):
        return None
    positions = list(curve["positions"])
    keep = len(positions) if last_seen is None else sum(1 for p in positions if p <= last_seen)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for device, bias in sorted(curve["bias"].items()):
        ax.plot(positions[:keep], bias[:keep], marker=".", label=device)
    title = "learned position bias (shallow tower)"
    if keep < len(positions):
        title += f"\npositions 0-{positions[keep - 1]}, those in the evaluated logs"
    ax.set(xlabel="position (0 = top)", ylabel="bias logit b(position, device)", title=title)
    ax.legend(fontsize="small")
    return _save(fig, out_dir, "position_bias.png")


def gates_plot(out_dir: str, utilization: dict[str, Any] | None) -> str | None:
    """`gates.png`: each task's mean gate weight per expert (a heat map, rows = tasks)."""
    if not utilization or not utilization.get("heads"):
        return None
    plt = _pyplot()
    heads = list(utilization["heads"])
    weights = [utilization["heads"][h]["mean_weight_per_expert"] for h in heads]
    if len({len(w) for w in weights}) != 1:
        return None  # CGC/PLE gates mix different expert sets: a per-head table says it better
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(weights[0]), 0.6 + 0.5 * len(heads)))
    image = ax.imshow(weights, cmap="viridis", vmin=0, aspect="auto")
    ax.set(yticks=range(len(heads)), yticklabels=heads, xticks=range(len(weights[0])),
           xlabel="expert", title="mean gate weight per expert")
    for i, row in enumerate(weights):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.5 else "k", fontsize=8)
    fig.colorbar(image, ax=ax)
    return _save(fig, out_dir, "gates.png")
