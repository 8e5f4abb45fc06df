"""Shared fixtures: one tiny end-to-end pipeline run (twice) reused by every slow test."""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import os

from watchnext.core.config import DEFAULT_HEADS

import pytest

TINY = {
    "data": {"simulate_impressions_per_day": 4000, "simulate_seed": 11},
    "model": {"shared_hidden_units": 16, "num_experts": 2, "expert_units": [8], "tower_units": [4]},
    # Warm start off: the second run must then find every component cached up to the
    # Evaluator (with warm start the Trainer's inputs change: the first model is its base).
    "training": {"train_steps": 80, "eval_steps": 5, "batch_size": 128, "warm_start": False},
    # A tiny model on a tiny log is not expected to clear the production AUC floors;
    # the blessing still needs finite metrics and no regression against the baseline.
    "heads": [dict(dataclasses.asdict(h), value_threshold=0.0) for h in DEFAULT_HEADS],
}

# Request-level fields of a watch-next request; the rest of an impression describes the candidate.
REQUEST_FIELDS = ("user_id", "query_video_id", "device", "country", "user_activity", "watch_history")
NOT_SERVED = ("request_id", "timestamp", "position")


@pytest.fixture(scope="session")
def pipeline_runs(tmp_path_factory):
    """(config, first RunResult, second RunResult) of `make run` on a tiny simulated log."""
    from watchnext.cli import simulated_logs
    from watchnext.core.config import load_config
    from watchnext.pipeline.local_runner import RunPaths, run_local

    out = tmp_path_factory.mktemp("e2e")
    config = load_config(None, {**TINY, "pipeline": {"output_dir": str(out)}})
    logs = simulated_logs(config, RunPaths(str(out)).simulated_logs)
    first = run_local(config, logs)
    second = run_local(config, logs)
    return config, first, second


@pytest.fixture(scope="session")
def pushed_model(pipeline_runs) -> str:
    _, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    return first.pushed_path


@pytest.fixture(scope="session")
def eval_examples(pipeline_runs) -> list[bytes]:
    """Serialized raw tf.Examples from the eval split the pipeline wrote."""
    import tensorflow as tf

    config, _, _ = pipeline_runs
    pattern = os.path.join(config.pipeline.output_dir, "tfx", "**", "Split-eval", "*.gz")
    files = sorted(glob.glob(pattern, recursive=True))
    assert files, f"no eval examples under {pattern}"
    return [r.numpy() for r in tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(64)]


@pytest.fixture(scope="session")
def rank_request(pipeline_runs) -> dict:
    """A ranking request built from the first logged slate of the simulated log."""
    config, _, _ = pipeline_runs
    files = sorted(glob.glob(os.path.join(config.pipeline.output_dir, "simulated_logs", "impressions", "*",
                                          "*.jsonl.gz")))
    with gzip.open(files[0], "rt") as f:
        rows = [json.loads(line) for line in f]
    first = rows[0]["request_id"]
    slate = [r for r in rows if r["request_id"] == first]
    request = {k: first_value for k, first_value in slate[0].items() if k in REQUEST_FIELDS}
    request["candidates"] = [{k: v for k, v in r.items() if k not in REQUEST_FIELDS + NOT_SERVED}
                             for r in slate]
    return request


def folder_tree(path: str) -> dict[str, tuple[int, float]]:
    """{relative file path: (size, mtime)} of everything under `path`."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            out[os.path.relpath(full, path)] = (os.path.getsize(full), os.path.getmtime(full))
    return out


@pytest.fixture()
def snapshot():
    """`snapshot(folder)`: sizes and mtimes of its files, to assert a folder was left untouched."""
    return folder_tree


# Parallel runs (`make test` runs `pytest -n 2 --dist loadgroup`, pytest-xdist). Each worker
# builds its own session fixtures, so every test that reads the shared pipeline run goes to
# one worker, and each other module stays whole on one worker (its module fixtures are built
# once). The shared run's tests go first: they are the longest chain, and the other worker
# takes everything else meanwhile.
SHARED_RUN_GROUP = "pipeline_runs"


def pytest_itemcollected(item):
    # Marked as each test is collected, so the group is there before pytest-xdist reads it.
    shared = SHARED_RUN_GROUP in item.fixturenames
    item.add_marker(pytest.mark.xdist_group(SHARED_RUN_GROUP if shared else item.nodeid.split("::")[0]))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: SHARED_RUN_GROUP not in item.fixturenames)  # stable: order kept otherwise


# Packages a fast CLI path must not import (checked in a fresh interpreter).
HEAVY_MODULES = ("tensorflow", "tfx", "apache_beam", "tensorflow_transform")


def _main_in_fresh_process(argv: list[str], cwd: str) -> dict:
    """Run `watchnext.cli.main(argv)` in a new interpreter; its exit status, its stderr and which
    heavy packages it imported (a fresh process, since the test's may have TensorFlow loaded)."""
    import json
    import subprocess
    import sys

    code = ("import json, sys\nfrom watchnext.cli import main\n"
            f"status = main({argv!r})\n"
            f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
            "print(json.dumps({'status': status, 'heavy': heavy}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


@pytest.fixture()
def cli_in_fresh_process():
    """`(argv, cwd) -> {"status", "heavy", "stderr"}`: the CLI run in a new interpreter."""
    return _main_in_fresh_process
