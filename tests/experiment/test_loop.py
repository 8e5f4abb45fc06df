"""The closed loop: each day is served by the model the previous day's job pushed; it is
deterministic, resumes after a failure with the same logs, and records true metrics."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from types import SimpleNamespace

from watchnext.experiment.loop import LOGGING, STATE_FILE, run_closed_loop
from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.policy import OraclePolicy, RandomPolicy

import pytest

WORLD = SimulatorParams(impressions_per_day=3000, num_users=400, num_videos=300, seed=4, shards=1)
POLICIES = {"oracle": OraclePolicy(), "random": RandomPolicy()}


def _config(out):
    return SimpleNamespace(pipeline=SimpleNamespace(output_dir=str(out)))


class Job:
    """A stand-in daily job: pushes the models of `pushes` (day → name) and records its calls."""

    def __init__(self, pushes: dict[int, str], fail_on: int | None = None):
        self.pushes, self.fail_on, self.calls = pushes, fail_on, []
        self.serving: str | None = None

    def __call__(self, config, logs_dir, span):
        day = int(str(span)[-2:]) - 1
        self.calls.append(day)
        assert os.path.isdir(os.path.join(logs_dir, "impressions", f"span={span}"))
        if day == self.fail_on:
            raise RuntimeError("the daily job failed")
        self.serving = self.pushes.get(day, self.serving)
        return self.serving


def _logs(out) -> dict[str, str]:
    return {os.path.relpath(f, out): hashlib.sha256(open(f, "rb").read()).hexdigest()
            for f in sorted(glob.glob(os.path.join(str(out), "closed_loop_logs", "*", "span=*", "*")))}


def test_each_day_is_served_by_the_previous_days_push(tmp_path):
    job = Job({0: "random", 2: "oracle"})
    messages: list[str] = []
    days = run_closed_loop(_config(tmp_path), WORLD, 4, daily_job=job, policy_for=POLICIES.get,
                           progress=messages.append)
    assert [d["policy"] for d in days] == [LOGGING, "random", "random", "oracle"]
    assert [d["pushed"] for d in days] == ["random", "random", "oracle", "oracle"]
    assert [d["span"] for d in days] == ["20260101", "20260102", "20260103", "20260104"]
    # True engagement follows the serving policy: the oracle day beats the random days.
    clicks = [d["true_clicks_per_request"] for d in days]
    assert clicks[3] > 1.5 * max(clicks[1], clicks[2]) and clicks[0] > max(clicks[1], clicks[2])
    assert days[3]["true_dismiss_rate"] < days[1]["true_dismiss_rate"]
    assert len(messages) == 4 and all("ETA" in m for m in messages)
    assert "day 4/4" in messages[-1]


def test_a_failed_day_resumes_with_the_same_policy_and_the_same_logs(tmp_path):
    pushes = {0: "random", 1: "oracle"}
    run_closed_loop(_config(tmp_path / "straight"), WORLD, 3, daily_job=Job(pushes), policy_for=POLICIES.get,
                    progress=lambda _: None)
    failing = Job(pushes, fail_on=1)
    with pytest.raises(RuntimeError, match="daily job failed"):
        run_closed_loop(_config(tmp_path / "resumed"), WORLD, 3, daily_job=failing, policy_for=POLICIES.get,
                        progress=lambda _: None)
    state = json.load(open(tmp_path / "resumed" / STATE_FILE))
    assert state["days"]["0"]["done"] and not state["days"]["1"]["done"]
    again = Job(pushes)
    again.serving = "random"  # what the failed run's day 0 left serving
    run_closed_loop(_config(tmp_path / "resumed"), WORLD, 3, daily_job=again, policy_for=POLICIES.get,
                    progress=lambda _: None)
    assert again.calls == [1, 2]  # day 0 is not redone
    straight = json.load(open(tmp_path / "straight" / STATE_FILE))
    resumed = json.load(open(tmp_path / "resumed" / STATE_FILE))
    assert straight == resumed
    assert _logs(tmp_path / "straight") == _logs(tmp_path / "resumed")


def test_another_world_in_the_same_folder_is_refused(tmp_path):
    run_closed_loop(_config(tmp_path), WORLD, 1, daily_job=Job({}), policy_for=POLICIES.get,
                    progress=lambda _: None)
    other = SimulatorParams(impressions_per_day=3000, num_users=400, num_videos=300, seed=5, shards=1)
    with pytest.raises(ValueError, match="another simulated world"):
        run_closed_loop(_config(tmp_path), other, 1, daily_job=Job({}), policy_for=POLICIES.get)


def test_the_real_daily_job_keeps_going_past_the_drift_a_new_policy_causes(tmp_path, monkeypatch):
    """Each day is served by another model, so the labels drift by design: the data gate must
    report that drift, not stop the loop (the first served day tripped it in `bench online`)."""
    from watchnext.core.config import load_config
    from watchnext.experiment import loop
    from watchnext.pipeline import local_runner

    seen = []
    monkeypatch.setattr(local_runner, "backfill", lambda cfg, logs, first, last: seen.append(cfg))
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path)}})
    assert config.validation.fail_on_anomalies
    assert loop._backfill_one_span(config, str(tmp_path / "logs"), 20260102) is None  # nothing pushed
    (used,) = seen
    assert used.validation.fail_on_anomalies is False
    assert used.validation.max_label_drift == config.validation.max_label_drift  # the rest as configured
