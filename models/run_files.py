"""The JSON summaries a Trainer run leaves beside its TensorBoard logs, in the ModelRun folder.

run_fn writes them (expert_utilization.json, training.json); report.md and the CLI read them
back through ML Metadata's newest ModelRun. A run without one (an older Trainer, or one that
failed before writing it) reads as None, never as an error.
"""

from __future__ import annotations

import json
import os
from typing import Any


def write(summary: dict[str, Any], model_run_dir: str, name: str) -> str:
    """Save `summary` as `name` in the ModelRun folder; return the file's path."""
    os.makedirs(model_run_dir, exist_ok=True)
    path = os.path.join(model_run_dir, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return path


def read(model_run_dir: str, name: str) -> dict[str, Any] | None:
    """The summary `name` of a ModelRun folder, or None when that run wrote none."""
    path = os.path.join(model_run_dir, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
