"""backfill runs one pipeline per span in order and resumes where a failed backfill stopped."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil

import watchnext.pipeline.local_runner as runner
from watchnext.components.atomic_pusher import version_dirs
from watchnext.core.config import load_config
from watchnext.pipeline import metadata
from watchnext.simulator.simulate import params_from_data_config, simulate

import pytest


def _logs(tmp_path, spans):
    for span in spans:
        os.makedirs(tmp_path / "logs" / "impressions" / f"span={span}")
    return str(tmp_path / "logs")


def test_backfill_runs_spans_in_order_and_resumes_after_a_failure(tmp_path, monkeypatch):
    logs = _logs(tmp_path, [20260103, 20260101, 20260102, 20260104])
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")}})
    calls: list[int] = []
    fail_on = {20260103}

    def fake_run(cfg, logs_dir, run_fn=runner.RUN_FN, span=None):
        calls.append(span)
        if span in fail_on:
            fail_on.discard(span)
            raise RuntimeError("Trainer crashed")
        return runner.RunResult(f"/serving/{span}", True, "pushed", 1.0)

    monkeypatch.setattr(runner, "run_local", fake_run)
    with pytest.raises(RuntimeError, match="Trainer crashed"):
        runner.backfill(config, logs, 20260101, 20260103)
    assert calls == [20260101, 20260102, 20260103]

    calls.clear()
    results = runner.backfill(config, logs, 20260101, 20260103)
    assert calls == [20260103]  # 01 and 02 were done; 04 is outside the range
    assert [span for span, _ in results] == [20260103]


def test_backfill_of_an_empty_range_is_an_error(tmp_path):
    logs = _logs(tmp_path, [20260101])
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")}})
    with pytest.raises(FileNotFoundError, match="no spans between 20270101 and 20270102"):
        runner.backfill(config, logs, 20270101, 20270102)


@pytest.mark.slow
def test_backfill_warm_starts_the_next_day_from_the_blessed_model_and_keeps_n_versions(
        pipeline_runs, tmp_path, caplog):
    """Day 2 of the e2e fixture's world, backfilled for real on a copy of its output folder.

    Reusing the fixture's day 1 (trained, blessed, pushed) leaves one real pipeline run to
    pay for. The blessing rules are relaxed here (any finite metrics pass), because this
    test is about what the daily job carries over, not about whether a tiny model improved.
    """
    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    out = str(tmp_path / "continued")
    shutil.copytree(config.pipeline.output_dir, out)
    logs = str(tmp_path / "logs")
    # Same world and seed as the fixture's log: day 1 is byte-identical, day 2 is new.
    summary = simulate(logs, dataclasses.replace(params_from_data_config(config.data), days=2))
    day2 = int(summary["spans"][1]["span"])
    config = config.replace(
        pipeline=dataclasses.replace(config.pipeline, output_dir=out),
        training=dataclasses.replace(config.training, warm_start=True),
        evaluation=dataclasses.replace(config.evaluation, max_auc_drop=1.0, max_mse_increase_ratio=1e9),
        serving=dataclasses.replace(config.serving, keep_versions=1))
    store = metadata.open_metadata(runner.RunPaths(out).metadata_path)
    (blessed_model,) = [a for a in store.get_artifacts_by_type("Model") if _was_blessed(store, a.id)]

    caplog.set_level(logging.INFO, logger="watchnext.models.warm_start")
    results = runner.backfill(config, logs, day2, day2)

    assert [span for span, _ in results] == [day2]
    (result,) = [r for _, r in results]
    assert result.pushed_path, result.message
    store = metadata.open_metadata(runner.RunPaths(out).metadata_path)
    trainers = metadata.component_executions(store, "Trainer")
    base = _inputs(store, trainers[-1].id, "base_model")
    assert [a.id for a in base] == [blessed_model.id], "day 2's Trainer did not get day 1's blessed model"
    assert f"warm start from {blessed_model.uri}" in caplog.text
    assert "embedding tables remapped" in caplog.text
    # keep_versions 1: the fixture's version is gone, day 2's is the only one.
    serving = os.path.join(config.serving_dir, config.serving.model_name)
    assert version_dirs(serving) == [int(os.path.basename(result.pushed_path))]

    # A second backfill over the same range finds it done and runs nothing.
    assert runner.backfill(config, logs, day2, day2) == []
    assert version_dirs(serving) == [int(os.path.basename(result.pushed_path))]


def _inputs(store, execution_id: int, key: str) -> list:
    """The artifacts an execution read under input `key`."""
    from ml_metadata.proto import metadata_store_pb2

    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id])
           if e.type == metadata_store_pb2.Event.INPUT and e.path.steps and e.path.steps[0].key == key]
    return store.get_artifacts_by_id(ids)


def _was_blessed(store, model_id: int) -> bool:
    """Whether some ModelBlessing in MLMD blesses the Model artifact `model_id`."""
    return any(b.custom_properties["blessed"].int_value == 1
               and b.custom_properties["current_model_id"].int_value == model_id
               for b in store.get_artifacts_by_type("ModelBlessing"))
