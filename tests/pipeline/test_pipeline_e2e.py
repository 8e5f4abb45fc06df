"""End to end: simulate a tiny log, run the whole local pipeline twice, check what was pushed.

One module-scoped run keeps the suite fast; each test checks one promise of `make run`.
"""

from __future__ import annotations

import glob
import gzip
import os

from watchnext.cli import simulated_logs
from watchnext.models.export import EXAMPLES_INPUT, SERVING_SIGNATURE
from watchnext.pipeline.configs import load_config
from watchnext.pipeline.local_runner import RunPaths, run_local

import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow

TINY = {
    "data": {"simulate_impressions_per_day": 4000, "simulate_seed": 11},
    "model": {"shared_hidden_units": 16, "num_experts": 2, "expert_units": [8], "tower_units": [4]},
    "training": {"train_steps": 80, "eval_steps": 5, "batch_size": 128},
    # The tiny model on a tiny log is not expected to clear the production floors.
    "heads": [
        {"name": "click", "type": "binary", "label": "click", "position_bias": True},
        {"name": "watch_time", "type": "regression", "label": "watch_time", "label_transform": "log1p",
         "score_form": "log1p", "position_bias": True, "loss_weight": 0.5},
        {"name": "like", "type": "binary", "label": "like", "group": "satisfaction"},
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    config = load_config(None, {**TINY, "pipeline": {"output_dir": str(out)}})
    logs = simulated_logs(config, RunPaths(str(out)).simulated_logs)
    first = run_local(config, logs)
    second = run_local(config, logs)
    return config, first, second


def _eval_examples(config, limit: int = 64) -> list[bytes]:
    pattern = os.path.join(config.pipeline.output_dir, "tfx", "**", "Split-eval", "*.gz")
    files = sorted(glob.glob(pattern, recursive=True))
    assert files, f"no eval examples under {pattern}"
    ds = tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(limit)
    return [r.numpy() for r in ds]


def test_first_run_pushes_a_versioned_saved_model(runs):
    config, first, _ = runs
    assert first.pushed_path, first.message
    root = os.path.join(config.serving_dir, config.serving.model_name)
    assert os.path.dirname(first.pushed_path) == root
    assert os.path.basename(first.pushed_path).isdigit()
    assert os.path.exists(os.path.join(first.pushed_path, "saved_model.pb"))


def test_serving_default_takes_examples_and_returns_one_output_per_head(runs):
    config, first, _ = runs
    loaded = tf.saved_model.load(first.pushed_path)
    sig = loaded.signatures[SERVING_SIGNATURE]
    (inputs,) = sig.structured_input_signature[1].values()
    assert inputs.name == EXAMPLES_INPUT and inputs.dtype == tf.string
    assert set(sig.structured_outputs) == set(config.head_names) | {"score"}
    out = sig(**{EXAMPLES_INPUT: tf.constant(_eval_examples(config))})
    for head in config.heads:
        values = out[head.name].numpy()
        assert values.shape == (64,)
        assert all(map(lambda v: v == v and abs(v) != float("inf"), values)), head.name
        if head.type == "binary":
            assert values.min() >= 0.0 and values.max() <= 1.0
        else:
            assert values.min() >= 0.0
    assert (out["score"].numpy() > 0).all()


def test_second_run_reuses_the_cache_and_evaluates_against_the_first_model(runs):
    config, _, second = runs
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(RunPaths(
            config.pipeline.output_dir).metadata_path))
    trainer_runs = _executions(store, "Trainer")
    states = sorted(metadata_store_pb2.Execution.State.Name(e.last_known_state) for e in trainer_runs)
    assert states == ["CACHED", "COMPLETE"], states
    # The second Evaluator saw a baseline: the model blessed in the first run.
    evaluations = _executions(store, "Evaluator")
    assert len(evaluations) == 2
    events = store.get_events_by_execution_ids([evaluations[-1].id])
    input_keys = {p.key for e in events if e.type == metadata_store_pb2.Event.INPUT
                  for p in e.path.steps if p.HasField("key")}
    assert "baseline_model" in input_keys
    assert second.blessed, second.message


def _executions(store, component: str) -> list:
    """Executions of a TFX component type (MLMD names types by their full class path)."""
    (type_name,) = [t.name for t in store.get_execution_types() if t.name.endswith("." + component)]
    return sorted(store.get_executions_by_type(type_name), key=lambda e: e.id)


def test_simulated_log_is_reused_not_rewritten(runs):
    config, _, _ = runs
    logs = RunPaths(config.pipeline.output_dir).simulated_logs
    files = sorted(glob.glob(os.path.join(logs, "impressions", "*", "*")))
    mtimes = [os.path.getmtime(f) for f in files]
    simulated_logs(config, logs)
    assert [os.path.getmtime(f) for f in files] == mtimes
    with gzip.open(files[0], "rt") as f:
        assert f.readline().startswith("{")
