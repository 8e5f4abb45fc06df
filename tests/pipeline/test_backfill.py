"""backfill runs one pipeline per span in order and resumes where a failed backfill stopped."""

from __future__ import annotations

import os

import watchnext.pipeline.local_runner as runner
from watchnext.pipeline.configs import load_config

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
