"""The Trainer's run_fn on two processes (chief + worker) over 127.0.0.1 with
MultiWorkerMirroredStrategy, against the same run_fn in one process on the same examples.

One module fixture (slow: ~1 min to featurize a small simulated span with the real
preprocessing_fn on Beam, then the single-process and the two-process Trainer runs, each
process ~15 s of imports on 2 cores) feeds every slow test here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import watchnext
from watchnext.core.config import from_dict
from watchnext.models import multi_worker as mw

import numpy as np
import pytest

SMALL = {"model": {"shared_hidden_units": 16, "num_experts": 2, "expert_units": [8], "tower_units": [4]},
         "training": {"batch_size": 128, "seed": 3, "warm_start": False}}
TRAIN_STEPS, EVAL_STEPS = 80, 5
IMPRESSIONS = 8000
# "Within noise", per binary head. The two runs start from the same weights and take the same
# number of global steps on the same global batches (one Transform file: each worker takes its half
# of every global batch), but draw other dropout masks and sum gradients in another order, so they
# are two draws of the same training, not one model. Two bounds:
# - every head: |AUC(2 workers) − AUC(1 process)| < 3 standard errors of one AUC on this eval set
#   (Hanley–McNeil at 0.5), the sampling noise of either figure;
# - heads with at least MIN_POSITIVES eval positives (click): < 3 standard errors of DeLong's paired
#   test on the same eval examples, much tighter. Not for rare labels: after 80 steps their AUC
#   moves with training noise beyond the paired SE (measured while writing this test, 8,000
#   impressions, 1,570 eval examples: like, 44 positives, 3.1 paired SEs apart but 2.0 one-AUC
#   SEs; click, 217 positives, 1.3 paired SEs; dismiss, 74 positives, 0.4).
MIN_POSITIVES = 100
PAIRED_SE_TOLERANCE = 3.0


def tf1_scores(model_dir: str, records: list[bytes], work: str) -> dict[str, np.ndarray]:
    """The serving signature's outputs on `records`, loaded as TF Serving's C++ loader loads it."""
    import tensorflow as tf

    path = os.path.join(work, "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    out = os.path.join(work, "scores.npz")
    loader = os.path.join(os.path.dirname(watchnext.__file__), "serving", "tf1_loader.py")
    proc = subprocess.run([sys.executable, loader, model_dir, path, out], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["python_ops"] == [] and report["examples"] == len(records), report
    with np.load(out) as scores:
        return {k: scores[k] for k in scores.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from watchnext.pipeline import datasets

    work = tmp_path_factory.mktemp("multi_worker")
    config = from_dict(SMALL)
    data = datasets.featurized_simulation(str(work / "data"), IMPRESSIONS, seed=5, config=config)
    examples = mw.link_examples(data.train_files, str(work / "examples"))
    out = {"data": data, "work": work}

    def train_and_score(name: str, processes: int, distribution: str) -> None:
        run_config = config.replace(training=dataclasses.replace(config.training, distribution=distribution))
        base = work / name
        inputs = mw.TrainerInputs(
            examples_uri=examples, transform_dir=data.transform_dir,
            serving_model_dir=str(base / "model" / "Format-Serving"), model_run_dir=str(base / "model_run"),
            working_dir=str(base / "working"), config_json=run_config.to_json(),
            train_steps=TRAIN_STEPS, eval_steps=EVAL_STEPS)
        # The processes' own temporary folder: what a non-chief leaves behind would show there.
        temp = base / "tmp"
        temp.mkdir(parents=True)
        results = mw.run_processes(inputs, processes, str(base / "logs"), timeout_s=900,
                                   env={**os.environ, "TMPDIR": str(temp)})
        scores = tf1_scores(inputs.serving_model_dir, data.eval_raw, str(base))
        out[name] = {"inputs": inputs, "results": results, "scores": scores}

    # The one-process and the two-process runs side by side (each waits on its own processes).
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(train_and_score, "single", 1, "default"),
                   pool.submit(train_and_score, "multi", 2, "multi_worker_mirrored")]
        for future in futures:
            future.result()
    return out


@pytest.mark.slow
def test_two_processes_form_one_cluster_of_two_replicas_with_one_chief(runs):
    results = runs["multi"]["results"]
    assert [(r.task_type, r.task_id, r.chief) for r in results] == [("chief", 0, True), ("worker", 0, False)]
    assert all(r.replicas == 2 for r in results), results
    # Both take the whole budget of global steps (each a global batch of training.batch_size).
    assert all(r.global_steps == TRAIN_STEPS for r in results), results
    (single,) = runs["single"]["results"]
    assert (single.task_type, single.chief, single.replicas) == (None, True, 1)
    assert single.global_steps == TRAIN_STEPS


@pytest.mark.slow
def test_only_the_chief_writes_the_trainer_outputs(runs):
    inputs = runs["multi"]["inputs"]
    model_root = os.path.dirname(inputs.serving_model_dir)
    # The chief's SavedModel and nothing else: no worker folder beside it.
    assert os.listdir(model_root) == ["Format-Serving"]
    assert os.path.exists(os.path.join(inputs.serving_model_dir, "saved_model.pb"))
    run_files = {os.path.relpath(os.path.join(d, f), inputs.model_run_dir)
                 for d, _, files in os.walk(inputs.model_run_dir) for f in files}
    assert "expert_utilization.json" in run_files
    assert not any("workertemp" in f for f in run_files), sorted(run_files)
    # The worker saved too (a save may need every worker), into temporary folders it then removed.
    with open(os.path.join(os.path.dirname(model_root), "logs", "task-1.log"), encoding="utf-8") as f:
        log = f.read()
    temps = [line.split(" to ")[-1].split(",")[0] for line in log.splitlines() if "not the chief" in line]
    assert len(temps) == 2, log[-3000:]  # the SavedModel, then the expert utilization summary
    assert all(t.startswith(str(runs["work"] / "multi" / "tmp")) for t in temps), temps
    assert not any(os.path.exists(t) for t in temps), temps
    assert not [f for f in os.listdir(runs["work"] / "multi" / "tmp") if f.startswith("watchnext-")]


@pytest.mark.slow
def test_the_two_worker_model_serves_and_scores_within_noise_of_the_single_process_model(runs):
    from watchnext.components.evaluator.paired import paired_auc
    from watchnext.pipeline import oracle_scores

    data = runs["data"]
    single, multi = runs["single"]["scores"], runs["multi"]["scores"]
    heads = oracle_scores.binary_heads(data.config)
    assert "click" in heads
    for head in heads:
        labels = data.eval_labels[data.config.head(head).label]
        assert np.isfinite(multi[head]).all() and multi[head].shape == single[head].shape == labels.shape
        result = paired_auc(labels, multi[head], single[head])
        null_se = oracle_scores.null_auc_standard_error(labels)
        assert abs(result.diff) < 3 * null_se, (head, result, null_se)
        if labels.sum() >= MIN_POSITIVES:
            assert abs(result.diff) < PAIRED_SE_TOLERANCE * result.se, (head, result)
        if head == "click":  # the commonest label: both models must have learned it
            assert min(result.candidate, result.baseline) > 0.5 + 3 * null_se, (head, result, null_se)
