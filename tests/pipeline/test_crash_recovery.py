"""SIGKILL in the middle of a run, then rerun: the pipeline completes, reusing what finished.

The CI subset kills during the Trainer; `python -m bench.drills.crash_test --phase Transform|Trainer|Pusher`
runs the same check for every phase (see README, Reliability).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from bench.drills.crash import (
    finished_before_kill,
    kill_during,
    serving_versions_complete,
)
from watchnext.pipeline.local_runner import RunPaths, run_local
from watchnext.pipeline.metadata import execution_states

import pytest

pytestmark = pytest.mark.slow


def test_killed_trainer_then_rerun_completes_with_cache(pipeline_runs, tmp_path):
    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    logs = RunPaths(config.pipeline.output_dir).simulated_logs  # the same logs: upstream stays cached
    out = str(tmp_path / "crashed")
    shutil.copytree(config.pipeline.output_dir, out)
    # One more training step: everything up to Transform is cached, the Trainer must rerun.
    config = config.replace(
        pipeline=dataclasses.replace(config.pipeline, output_dir=out),
        training=dataclasses.replace(config.training, train_steps=config.training.train_steps + 1))
    killed = kill_during(config, logs, phase="Trainer", after_seconds=3.0)
    assert killed.killed, killed.output[-2000:]
    assert serving_versions_complete(os.path.join(config.serving_dir, config.serving.model_name))

    finished = finished_before_kill(killed.output)
    assert "Transform" in finished and "Trainer" not in finished, finished

    result = run_local(config, logs)
    assert result.pushed_path, result.message
    assert serving_versions_complete(os.path.join(config.serving_dir, config.serving.model_name))
    # Every component the killed run finished is a cache hit in the rerun (a node skipped by
    # design stays FAILED), and the killed Trainer execution was left behind, never complete.
    states = execution_states(RunPaths(out).metadata_path)
    assert all(states[c][-1] in ("CACHED", "FAILED") for c in finished if c in states), states
    assert states["Transform"][-1] == "CACHED", states
    assert states["Trainer"][-1] == "COMPLETE" and "RUNNING" in states["Trainer"], states


