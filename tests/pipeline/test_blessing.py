"""The Evaluator's gate: a model trained on shuffled labels after a good one is not pushed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

from watchnext.pipeline.local_runner import RunPaths, run_local

import pytest

pytestmark = pytest.mark.slow


def test_shuffled_label_model_is_not_blessed_and_serving_is_untouched(pipeline_runs, tmp_path, monkeypatch,
                                                                      snapshot):
    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    logs = RunPaths(config.pipeline.output_dir).simulated_logs  # the same logs: upstream stays cached
    # Continue from a copy of the good runs (ML Metadata knows the blessed model).
    out = str(tmp_path / "continued")
    shutil.copytree(config.pipeline.output_dir, out)
    config = config.replace(pipeline=dataclasses.replace(config.pipeline, output_dir=out))
    serving = os.path.join(config.serving_dir, config.serving.model_name)
    before = snapshot(serving)
    assert before, "the copied serving folder should hold the good model"

    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    result = run_local(config, logs, run_fn="shuffled_label_trainer.run_fn")
    sys.modules.pop("shuffled_label_trainer", None)

    assert result.pushed_path is None
    assert result.blessed is False, result.message
    assert "not blessed by the Evaluator" in result.message
    assert "(vs baseline)" in result.message and "needs change_threshold" in result.message
    assert snapshot(serving) == before
