"""models/distribution.py: the real model trained under MirroredStrategy on two CPU devices.

The mirrored run (one child process: ~12 s of TensorFlow import, ~15 s tracing the mirrored
train step on 2 cores) and the multi-worker ones are marked slow.

TensorFlow fixes its devices when it first touches them, so the CPU is split into two
logical devices in a child process (this file, run as a script) that builds, trains and
exports the model both on one device and mirrored, and reports back in JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, ConfigError, from_dict

import pytest

VOCAB_SIZES = {"user": 6, "video": 10, "device": 2}
HISTORY_LENGTH = 3
BATCH = 64


def tiny_config(distribution: str) -> Config:
    """Two heads (one binary with position bias, one masked regression); no dropout, so that
    one device and two replicas see the same function."""
    return from_dict({
        "features": {
            "ids": [
                {"name": "user_id", "vocabulary": "user", "embedding_dim": 4, "oov_buckets": 1},
                {"name": "candidate_video_id", "vocabulary": "video", "embedding_dim": 4, "oov_buckets": 1},
                {"name": "watch_history", "vocabulary": "video", "embedding_dim": 4, "oov_buckets": 1,
                 "multivalent": True, "max_length": HISTORY_LENGTH},
                {"name": "device", "vocabulary": "device", "embedding_dim": 2, "oov_buckets": 1},
            ],
            "numeric": ["duration"],
            "log1p_numeric": [],
            "max_position": 5,
        },
        "heads": [
            {"name": "click", "type": "binary", "label": "click", "position_bias": True},
            {"name": "rating", "type": "regression", "label": "rating", "group": "satisfaction",
             "presence": "rating_present"},
        ],
        "model": {"shared_hidden_units": 8, "num_experts": 2, "expert_units": [4], "tower_units": [4],
                  "shallow_tower_units": [4], "position_embedding_dim": 2, "gate_dropout": 0.0,
                  "position_dropout": 0.0},
        "training": {"distribution": distribution, "batch_size": BATCH},
    })


def synthetic_batch(config: Config, n: int, seed: int = 0) -> dict:
    """Transformed features (models/preprocessing.py's contract) with learnable labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = {}
    for f in config.features.ids:
        rows = VOCAB_SIZES[f.vocabulary] + f.oov_buckets
        if f.multivalent:
            ids = rng.integers(0, rows, (n, f.max_length))
            ids[rng.random((n, f.max_length)) < 0.3] = -1  # padding
            batch[f.name] = ids.astype(np.int64)
        else:
            batch[f.name] = rng.integers(0, rows, n).astype(np.int64)
    for name in config.features.numeric:
        batch[name] = rng.normal(size=n).astype(np.float32)
    batch[config.features.position] = rng.integers(-1, config.features.max_position, n).astype(np.int64)
    batch["click"] = (batch["candidate_video_id"] % 2 == 0).astype(np.float32)
    batch["rating"] = (1.0 + batch["user_id"] % 5).astype(np.float32)
    batch["rating_present"] = (rng.random(n) < 0.5).astype(np.float32)
    return batch


def child(out_dir: str) -> None:
    """Runs in a fresh process: split the CPU, train one-device and mirrored models, export both."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from watchnext.models.distribution import strategy_from_config
    from watchnext.models.model import build_model

    import numpy as np
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    single_config, mirrored_config = tiny_config("default"), tiny_config("mirrored")
    batch = synthetic_batch(single_config, BATCH, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(BATCH)
    drop = {*single_config.label_keys, single_config.features.position}
    serving = {k: tf.constant(v[:8]) for k, v in batch.items() if k not in drop}
    spec = {k: tf.TensorSpec([None, *v.shape[1:]], v.dtype, name=k) for k, v in serving.items()}

    single = build_model(single_config, VOCAB_SIZES)
    single(batch)
    strategy = strategy_from_config(mirrored_config)
    with strategy.scope():
        mirrored = build_model(mirrored_config, VOCAB_SIZES)
        mirrored(batch)
    mirrored.set_weights(single.get_weights())

    # One step from the same weights on the same global batch: the same update, if each
    # replica's loss is scaled for the replicas (their gradients are summed). Eager: cheap.
    before = [v.numpy() for v in single.trainable_variables]
    for model in (single, mirrored):
        with model.distribute_strategy.scope():
            model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.05), run_eagerly=True)
        model.fit(dataset, epochs=1, verbose=0)

    def update_norm(model: tf_keras.Model) -> float:
        # Trainable variables only: the loss metrics' counts rightly sum over replicas.
        pairs = zip(model.trainable_variables, before, strict=True)
        return float(np.sqrt(sum(float(np.sum((w.numpy() - b) ** 2)) for w, b in pairs)))

    update_ratio = update_norm(mirrored) / update_norm(single)

    # Then train as the Trainer does: graph mode, Adam, one epoch over a repeated dataset.
    losses: list[float] = []
    record = tf_keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda step, logs: losses.append(float(logs["loss"])))
    with strategy.scope():
        mirrored.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.01))
    mirrored.fit(dataset.repeat(), steps_per_epoch=10, epochs=1, verbose=0, callbacks=[record])

    report = {"replicas": strategy.num_replicas_in_sync, "update_ratio": update_ratio, "losses": losses,
              "variable_type": type(mirrored.trainable_variables[0]).__name__}
    for name, model in (("single", single), ("mirrored", mirrored)):
        # What the Trainer exports: a graph-mode function of the inputs without position and labels.
        # (A Module holding the variables: saving the Keras object itself would trace every layer.)
        module = tf.Module()
        module.variables_ = list(model.variables)
        serve = tf.function(lambda inputs, model=model: model(inputs, training=False),
                            input_signature=[spec], autograph=False)
        path = os.path.join(out_dir, name)
        tf.saved_model.save(module, path, signatures={"serving_default": serve})
        signature = tf.saved_model.load(path).signatures["serving_default"]
        outputs = signature(**serving)
        report[name] = {
            "inputs": {k: [v.dtype.name, v.shape.as_list()]
                       for k, v in signature.structured_input_signature[1].items()},
            "outputs": {k: [v.dtype.name, v.shape.as_list()]
                        for k, v in signature.structured_outputs.items()},
            "finite": all(bool(np.isfinite(v.numpy()).all()) for v in outputs.values()),
            "rows": {k: int(v.shape[0]) for k, v in outputs.items()},
        }
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("distribution")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, __file__, str(out)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(out / "report.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.slow
def test_mirrored_strategy_replicates_over_both_logical_cpus(report: dict) -> None:
    assert report["replicas"] == 2
    assert report["variable_type"] == "MirroredVariable"


@pytest.mark.slow
def test_mirrored_training_is_finite_and_learns(report: dict) -> None:
    losses = report["losses"]
    assert all(v == v and abs(v) != float("inf") for v in losses), losses
    assert losses[-1] < losses[0], losses


@pytest.mark.slow
def test_mirrored_export_has_the_single_device_signature_and_finite_outputs(report: dict) -> None:
    single, mirrored = report["single"], report["mirrored"]
    assert mirrored["inputs"] == single["inputs"]
    assert mirrored["outputs"] == single["outputs"]
    assert "position" not in mirrored["inputs"]
    assert set(mirrored["outputs"]) == {"click", "rating", "score"}
    assert mirrored["finite"] and single["finite"]
    assert set(mirrored["rows"].values()) == {8}


@pytest.mark.slow
def test_a_mirrored_step_makes_the_one_device_update(report: dict) -> None:
    # Not exactly 1: the rating head averages over each replica's rated examples.
    assert 0.9 < report["update_ratio"] < 1.1, report["update_ratio"]


def test_default_is_the_default_strategy_and_unknown_names_the_key() -> None:
    from watchnext.models.distribution import strategy_from_config

    import tensorflow as tf

    assert strategy_from_config(tiny_config("default")) is tf.distribute.get_strategy()
    with pytest.raises(ConfigError, match=r"training\.distribution"):
        tiny_config("parameter_server")


@pytest.mark.parametrize(("tf_config", "fragment"), [
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "'task'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "does not name"),
])
def test_a_bad_tf_config_is_explained_before_tensorflow_sees_it(tf_config: str, fragment: str) -> None:
    from watchnext.models.distribution import _check_tf_config

    with pytest.raises(ValueError, match=fragment):
        _check_tf_config(tf_config)


def _strategy_as(task_type: str, task_id: int, cluster: dict[str, list[str]]) -> object:
    """A stand-in strategy whose cluster resolver is what TF_CONFIG would give (no TensorFlow cluster)."""
    import types

    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize(("task_type", "task_id", "cluster", "chief"), [
    ("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]}, True),
    ("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}, False),  # Vertex AI: pool 0 is the chief
    ("worker", 0, {"worker": ["a:1", "b:1"]}, True),  # no chief task: worker 0 is the chief
    ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
])
def test_is_chief_follows_tensorflows_convention(task_type, task_id, cluster, chief) -> None:
    from watchnext.models.distribution import is_chief

    assert is_chief(_strategy_as(task_type, task_id, cluster)) is chief


def test_a_single_process_is_the_chief_and_writes_in_place(tmp_path) -> None:
    from watchnext.models.distribution import chief_writes, is_chief

    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    assert is_chief(strategy)
    with chief_writes(strategy, str(tmp_path / "model")) as path:
        assert path == str(tmp_path / "model")


def test_a_non_chief_writes_into_a_temporary_folder_removed_even_on_failure(tmp_path, monkeypatch) -> None:
    from watchnext.models.distribution import chief_writes

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    worker = _strategy_as("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]})
    target = tmp_path / "out" / "Format-Serving"
    with chief_writes(worker, str(target)) as path:
        assert path != str(target) and os.path.basename(path) == "Format-Serving"
        os.makedirs(path)
        open(os.path.join(path, "saved_model.pb"), "w").close()
        written = os.path.dirname(path)
    assert not os.path.exists(written) and not target.exists()
    with pytest.raises(RuntimeError, match="boom"), chief_writes(worker, str(target)) as path:
        os.makedirs(path)
        raise RuntimeError("boom")
    assert not os.path.exists(os.path.dirname(path))
    assert [f for f in os.listdir(tmp_path) if f.startswith("watchnext-")] == []


@pytest.mark.parametrize(("workers", "files", "repeat", "policy"), [
    (0, 1, True, None),  # no TF_CONFIG: left alone (AUTO)
    (2, 1, True, "DATA"),  # fewer files than workers: FILE would fail at the first step
    (2, 3, True, "FILE"),
    (2, 3, False, "DATA"),  # a finite dataset: equal steps on every worker
])
def test_input_sharding_by_file_only_with_a_file_per_worker(tmp_path, monkeypatch, workers, files, repeat,
                                                            policy) -> None:
    from watchnext.models.distribution import cluster_workers, with_input_sharding

    import tensorflow as tf

    if workers:
        cluster = {"chief": ["127.0.0.1:1"], "worker": [f"127.0.0.1:{2 + i}" for i in range(workers - 1)]}
        task = {"type": "chief", "index": 0}
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    else:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_workers() == max(workers, 1)
    for i in range(files):
        (tmp_path / f"part-{i}.gz").write_bytes(b"")
    dataset = tf.data.Dataset.range(4)
    sharded = with_input_sharding(dataset, [str(tmp_path / "part-*")], repeat)
    policies = tf.data.experimental.AutoShardPolicy
    expected = policies[policy] if policy else policies.AUTO
    assert sharded.options().experimental_distribute.auto_shard_policy == expected


def multi_worker_child(tf_config: str) -> None:
    """Runs in a fresh process (the strategy must come before any other op): report the strategy."""
    if tf_config:
        os.environ["TF_CONFIG"] = tf_config
    from watchnext.models.distribution import strategy_from_config

    import tensorflow as tf

    strategy = strategy_from_config(tiny_config("multi_worker_mirrored"))
    with strategy.scope():
        variable = tf.Variable(1.0)
    print(json.dumps({"strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                      "task": strategy.cluster_resolver.task_type, "variable": type(variable).__name__}))


@pytest.mark.slow
@pytest.mark.parametrize("cluster", [False, True])
def test_multi_worker_mirrored_reads_tf_config(cluster: bool) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    tf_config = json.dumps({"cluster": {"worker": [f"localhost:{port}"]},
                            "task": {"type": "worker", "index": 0}}) if cluster else ""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, __file__, "--multi-worker", tf_config], capture_output=True,
                          text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"strategy": "CollectiveAllReduceStrategy", "replicas": 1,
                      "task": "worker" if cluster else None, "variable": "MirroredVariable"}


if __name__ == "__main__":
    if sys.argv[1] == "--multi-worker":
        multi_worker_child(sys.argv[2])
    else:
        child(sys.argv[1])
