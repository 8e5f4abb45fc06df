"""What a training run did, written beside the model run for report.md and the CLI.

The Evaluator knows the eval rows and the verdict but not how the model was trained: how
many examples it saw, how many steps and epochs it ran, why it stopped, and what the
shallow tower learned. The Trainer writes that here (`training.json` in its ModelRun
artifact, next to TensorBoard's logs and `expert_utilization.json`) and report.md's header
and plots read it.

The learned position curve is the shallow tower's bias logit b(position, device) for
every position below `features.max_position` and every device the vocabulary knows: the
examination effect the tower took out of the engagement heads (Zhao et al. 2019, §4.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models import run_files

import numpy as np

# Written into the Trainer's ModelRun artifact.
SUMMARY_FILE = "training.json"


def position_curve(shallow_tower: Any, devices: Sequence[str]) -> dict[str, Any] | None:
    """{"positions": [0..P-1], "bias": {device: [b(p, device) for p]}} or None without a tower.

    `devices` are the device vocabulary in id order (id i is devices[i]); OOV rows are left out.
    """
    if shallow_tower is None:
        return None
    import tensorflow as tf

    positions = np.arange(shallow_tower.max_position, dtype=np.int64)
    bias = {}
    for device_id, name in enumerate(devices[: shallow_tower.num_devices]):
        b = shallow_tower(tf.constant(positions), tf.fill([len(positions)], tf.constant(device_id, tf.int64)),
                          training=False)
        bias[str(name)] = [round(float(v), 5) for v in np.reshape(b.numpy(), [-1])]
    return {"positions": positions.tolist(), "bias": bias}


def write(model_run_dir: str, *, train_examples: int, batch_size: int, steps: int, best_step: int,
          stop_reason: str, position: dict[str, Any] | None) -> str:
    """Write training.json; epochs are steps × batch / train examples (the passes over the data)."""
    summary = {
        "train_examples": int(train_examples), "batch_size": int(batch_size), "steps": int(steps),
        "best_step": int(best_step),
        "epochs": round(steps * batch_size / train_examples, 3) if train_examples else None,
        "stop_reason": stop_reason, "position_curve": position,
    }
    return run_files.write(summary, model_run_dir, SUMMARY_FILE)


def read(model_run_dir: str) -> dict[str, Any] | None:
    """training.json of a model run, or None when that run wrote none (an older Trainer)."""
    return run_files.read(model_run_dir, SUMMARY_FILE)
