"""Data validation stops a run before Transform: a new span whose click rate collapsed.

Continues from a copy of the session's good runs (ML Metadata holds the previous span's
statistics), adds a next-day span in which most requests lost their events (a broken
event join upstream: the click rate falls to about a fifth), and runs `watchnext run`.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import zlib

from watchnext.cli import DATA_ANOMALIES_EXIT, main
from watchnext.pipeline.local_runner import RunPaths
from watchnext.pipeline.metadata import execution_history, open_metadata
from watchnext.pipeline.pipeline import PREVIOUS_STATISTICS_ID

import pytest
import yaml

pytestmark = pytest.mark.slow


def _add_span_without_most_events(logs: str) -> int:
    """Copy the newest span as the next day, keeping the events of one request in five."""
    (span_dir,) = sorted(glob.glob(os.path.join(logs, "impressions", "span=*")))[-1:]
    span = int(span_dir.rsplit("=", 1)[1])
    new = span + 1
    for kind in ("impressions", "events"):
        src = os.path.join(logs, kind, f"span={span}")
        dst = os.path.join(logs, kind, f"span={new}")
        os.makedirs(dst)
        for path in sorted(glob.glob(os.path.join(src, "*.jsonl.gz"))):
            with gzip.open(path, "rt") as f:
                rows = [json.loads(line) for line in f]
            if kind == "events":
                rows = [r for r in rows if zlib.crc32(r["request_id"].encode()) % 5 == 0]
            with gzip.open(os.path.join(dst, os.path.basename(path)), "wt") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
    return new


def _executions(metadata_path: str, type_name: str) -> int:
    return len(open_metadata(metadata_path).get_executions_by_type(type_name))


def test_a_collapsed_click_rate_stops_the_run_before_transform(pipeline_runs, tmp_path, capsys, snapshot):
    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    out = str(tmp_path / "continued")
    shutil.copytree(config.pipeline.output_dir, out)
    logs = str(tmp_path / "logs")
    shutil.copytree(RunPaths(config.pipeline.output_dir).simulated_logs, logs)
    new_span = _add_span_without_most_events(logs)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(json.loads(config.to_json())))
    metadata = RunPaths(out).metadata_path
    transforms_before = _executions(metadata, "Transform")
    described_before = execution_history(open_metadata(metadata))[PREVIOUS_STATISTICS_ID]
    serving = os.path.join(out, "serving", config.serving.model_name)
    before = snapshot(serving)

    status = main(["run", "--config", str(config_file), "--output", out, "--logs", logs])

    err = capsys.readouterr().err
    assert status == DATA_ANOMALIES_EXIT, err
    assert "data validation found" in err and f"span {new_span}" in err
    assert "drift vs the previous span, split train_train: feature 'click'" in err
    assert "Jensen-Shannon" in err and "stopped before Transform" in err
    assert _executions(metadata, "Transform") == transforms_before
    # Yesterday's statistics came from yesterday's run: the previous span was not described again
    # (its StatisticsGen, left without examples, is skipped: a FAILED input resolution, no run).
    described = execution_history(open_metadata(metadata))[PREVIOUS_STATISTICS_ID]
    assert described[:len(described_before)] == described_before
    assert set(described[len(described_before):]) <= {"FAILED"}, described
    assert snapshot(serving) == before
