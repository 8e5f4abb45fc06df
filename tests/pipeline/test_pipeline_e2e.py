"""End to end: simulate a tiny log, run the whole local pipeline twice, check what was pushed.

The two runs are one session fixture (tests/conftest.py); each test checks one promise
of `make run`.
"""

from __future__ import annotations

import glob
import gzip
import os

from watchnext.cli import simulated_logs
from watchnext.models.export import EXAMPLES_INPUT, SERVING_SIGNATURE
from watchnext.pipeline.local_runner import RunPaths
from watchnext.pipeline.metadata import component_executions, open_metadata
from watchnext.pipeline.pipeline import create_pipeline

import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow


def test_first_run_pushes_a_versioned_saved_model(pipeline_runs):
    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    root = os.path.join(config.serving_dir, config.serving.model_name)
    assert os.path.dirname(first.pushed_path) == root
    assert os.path.basename(first.pushed_path).isdigit()
    assert os.path.exists(os.path.join(first.pushed_path, "saved_model.pb"))
    # Every component of the pipeline reported its progress (day one: the drift check's
    # previous-span nodes are skipped, and still reported as finished by the runner).
    paths = RunPaths(config.pipeline.output_dir)
    ids = {c.id for c in create_pipeline(config, logs_dir=paths.simulated_logs,
                                          pipeline_root=paths.pipeline_root).components}
    assert set(first.component_seconds) == ids, first.component_seconds
    assert {"DataGate", "DistributionValidator", "Trainer", "Pusher"} <= ids


def test_serving_default_takes_examples_and_returns_one_output_per_head(pipeline_runs, pushed_model,
                                                                         eval_examples):
    config, _, _ = pipeline_runs
    sig = tf.saved_model.load(pushed_model).signatures[SERVING_SIGNATURE]
    (inputs,) = sig.structured_input_signature[1].values()
    assert inputs.name == EXAMPLES_INPUT and inputs.dtype == tf.string
    assert set(sig.structured_outputs) == set(config.head_names) | {"score"}
    out = sig(**{EXAMPLES_INPUT: tf.constant(eval_examples)})
    for head in config.heads:
        values = out[head.name].numpy()
        assert values.shape == (len(eval_examples),)
        assert tf.reduce_all(tf.math.is_finite(values)), head.name
        if head.type == "binary":
            assert values.min() >= 0.0 and values.max() <= 1.0
        else:
            assert values.min() >= 0.0
    assert (out["score"].numpy() > 0).all()


def test_second_run_reuses_the_cache_and_evaluates_against_the_first_model(pipeline_runs):
    config, _, second = pipeline_runs
    from ml_metadata.proto import metadata_store_pb2

    store = open_metadata(RunPaths(config.pipeline.output_dir).metadata_path)
    states = sorted(metadata_store_pb2.Execution.State.Name(e.last_known_state)
                    for e in component_executions(store, "Trainer"))
    assert states == ["CACHED", "COMPLETE"], states
    # The second Evaluator saw a baseline: the model blessed in the first run.
    evaluations = component_executions(store, "Evaluator")
    assert len(evaluations) == 2
    events = store.get_events_by_execution_ids([evaluations[-1].id])
    input_keys = {p.key for e in events if e.type == metadata_store_pb2.Event.INPUT
                  for p in e.path.steps if p.HasField("key")}
    assert "baseline_model" in input_keys
    assert second.blessed, second.message


def test_simulated_log_is_reused_not_rewritten(pipeline_runs):
    config, _, _ = pipeline_runs
    logs = RunPaths(config.pipeline.output_dir).simulated_logs
    files = sorted(glob.glob(os.path.join(logs, "impressions", "*", "*")))
    mtimes = [os.path.getmtime(f) for f in files]
    simulated_logs(config, logs)
    assert [os.path.getmtime(f) for f in files] == mtimes
    with gzip.open(files[0], "rt") as f:
        assert f.readline().startswith("{")


def test_ingestion_counts_are_reported_after_a_run(pipeline_runs):
    from watchnext.pipeline.metadata import latest_ingestion

    config, _, _ = pipeline_runs
    line = latest_ingestion(RunPaths(config.pipeline.output_dir).metadata_path)
    assert line is not None
    impressions = config.data.simulate_impressions_per_day
    assert f"read {impressions} impressions" in line
    assert "rejected 0 impressions" in line and "rejected records: " in line


def test_report_has_the_header_and_plots_of_the_newest_run(pipeline_runs, tmp_path):
    from watchnext.pipeline.report import write_report

    config, _, _ = pipeline_runs
    path = write_report(config, RunPaths(config.pipeline.output_dir).metadata_path,
                        str(tmp_path / "report.md"))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    header = text.split("## ")[0]
    # The Trainer's own count of what it read, the budget it ran and the served baseline.
    assert " train (as the Trainer read them), " in header and " steps of " in header, header
    assert "| baseline | `" in header and "| blessing | floors: " in header, header
    for name in [*config.head_names, "position_bias", "gates"]:
        assert os.path.getsize(tmp_path / "report_plots" / f"{name}.png") > 1000, name
    assert "![learned position bias](report_plots/position_bias.png)" in text
