"""Where a local run keeps its pieces (pipeline/local_runner.RunPaths)."""

from __future__ import annotations

import os

from watchnext.pipeline.local_runner import RunPaths


def test_the_pipeline_root_is_absolute_so_recorded_uris_hold_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = RunPaths("watchnext_output").pipeline_root
    assert root == os.path.join(str(tmp_path), "watchnext_output", "tfx")
    monkeypatch.chdir("/")
    assert RunPaths("watchnext_output").pipeline_root != root  # resolved where the run starts


def test_a_remote_pipeline_root_is_left_as_given():
    assert RunPaths("gs://bucket/runs").pipeline_root == "gs://bucket/runs/tfx"
