"""How each task's gate spreads its weight over the experts, and the polarization alarm.

MMoE gates tend to polarize (Zhao et al. 2019, §4.3): a task's softmax puts nearly all
its weight on one expert for nearly every example, the other experts stop learning from
that task, and the model degrades to a shared-bottom one with extra cost. Gate dropout
(`model.gate_dropout`) is the paper's remedy; this module measures whether it worked.
The Trainer measures the gates on the eval split after training and writes the result
next to the model run; the CLI and `report.md` raise an alarm when a task's gate is
polarized for more than `evaluation.max_polarized_share` of the examples.
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.models import run_files

import numpy as np

# Written into the Trainer's ModelRun artifact.
UTILIZATION_FILE = "expert_utilization.json"


def gate_statistics(weights: np.ndarray, polarized_weight: float) -> dict[str, Any]:
    """Summary of [N, n] gate weights (rows sum to 1).

    polarized_share: fraction of rows whose largest weight exceeds `polarized_weight`;
    normalized_entropy: mean row entropy / log(n) (1 = uniform, 0 = one expert).
    """
    n = weights.shape[1]
    top = weights.max(axis=1)
    entropy = -np.sum(weights * np.log(np.clip(weights, 1e-12, 1.0)), axis=1)
    return {"experts": int(n),
            "polarized_share": float(np.mean(top > polarized_weight)),
            "mean_max_weight": float(np.mean(top)),
            "normalized_entropy": float(np.mean(entropy) / np.log(n)) if n > 1 else float("nan"),
            "mean_weight_per_expert": weights.mean(axis=0).tolist(),
            "top_expert_histogram": np.bincount(weights.argmax(axis=1), minlength=n).tolist()}


def measure(model: Any, batches: Any, steps: int, config: Config) -> dict[str, Any]:
    """Gate statistics per head over `steps` batches of transformed features."""
    collected: dict[str, list[np.ndarray]] = {}
    for batch in batches.take(steps):
        for head, weights in model.gate_weights(batch).items():
            collected.setdefault(head, []).append(np.asarray(weights))
    polarized = config.evaluation.polarized_gate_weight
    heads = {head: gate_statistics(np.concatenate(parts), polarized) for head, parts in collected.items()}
    examples = int(sum(len(p) for p in next(iter(collected.values()), [])))
    return {"architecture": config.model.architecture, "gate_dropout": config.model.gate_dropout,
            "polarized_gate_weight": polarized, "max_polarized_share": config.evaluation.max_polarized_share,
            "examples": examples, "heads": heads}


def alarms(summary: dict[str, Any]) -> list[str]:
    """One line per head whose gate is polarized on more than the allowed share of examples.

    Heads that read a single network (shared_bottom, single_task) have nothing to polarize.
    """
    out = []
    for head, stats in summary.get("heads", {}).items():
        if stats["experts"] > 1 and stats["polarized_share"] > summary["max_polarized_share"]:
            favourite = int(np.argmax(stats["top_expert_histogram"]))
            out.append(f"gate polarization: head {head!r} puts > {summary['polarized_gate_weight']:g} of "
                       f"its weight on one expert for {stats['polarized_share']:.0%} of "
                       f"{summary['examples']} eval examples (mostly expert {favourite}; allowed "
                       f"{summary['max_polarized_share']:.0%}); consider a higher model.gate_dropout "
                       "or fewer experts")
    return out


def write(summary: dict[str, Any], model_run_dir: str) -> str:
    """Save `summary` into the Trainer's ModelRun folder."""
    return run_files.write(summary, model_run_dir, UTILIZATION_FILE)


def read(model_run_dir: str) -> dict[str, Any] | None:
    """The summary a Trainer wrote, or None (older runs, or a Trainer that failed)."""
    return run_files.read(model_run_dir, UTILIZATION_FILE)
