"""The Beam components through PortableRunner, as on Flink, Spark or Dataflow, on loopback.

A local Beam job service (apache_beam's local_job_service_main) and an EXTERNAL worker pool
(apache_beam's worker_pool_main, which starts each SDK harness as a process of its own) run
in subprocesses on free 127.0.0.1 ports; the pipeline gets them through the `spark` preset's
fields (pipeline.beam_job_endpoint / beam_environment_type / beam_environment_config), so the
flags are exactly those a Spark job server would get. The job service speaks the Job API, the
workers the Fn API: the protocol of every portable runner. LogExampleGen, StatisticsGen (and
what Transform waits for: SchemaGen, ExampleValidator, DataGate) and Transform of one small
span run that way and, separately, on the in-process DirectRunner; their outputs must agree.

"Agree" means the same tf.Examples, parsed, not the same bytes: a serialized tf.Example's
feature map has no defined order, and the C++ protobuf that serializes them (protobuf 3.20's
Map, through tfx_bsl's RecordBatchToExamplesEncoder and `SerializeToString`) seeds each map's
hash table per message, so the same example comes out with its features in another order from
one serialization to the next, whatever the runner (the encoder turns 20 identical rows of
one batch into 20 distinct byte strings), so not even two DirectRunner runs agree byte for
byte; the portable run's examples all differed in bytes and none in content. The comparison is
still exact: every example of a split, keyed by its impression (request_id, candidate_video_id),
feature by feature, with the feature's type and every value (floats exactly, as float32); a lost,
duplicated, added or altered example fails it. Transformed examples carry no impression key and
z-scored floats whose last bits depend on the order the analyzers summed in (which the runner's
bundling sets): they are compared as a multiset, floats to rounding (assert_same_transformed).

Slow (two partial pipeline runs, and every SDK worker process imports TFX).
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.multi_worker import free_ports

import pytest

TINY = {"data": {"simulate_impressions_per_day": 1500, "simulate_seed": 5}}
LAST = "Transform"


def _wait_for_port(port: int, proc: subprocess.Popen, log_path: str, timeout_s: float = 300.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{open(log_path).read()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1.0)
    raise TimeoutError(f"{proc.args} did not listen on {port} within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def beam_services(tmp_path_factory):
    """(job endpoint, worker pool address): a local job service and an external worker pool."""
    logs = tmp_path_factory.mktemp("beam_services")
    job_port, pool_port = free_ports(2)
    commands = {
        "job_service": [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                        "--port", str(job_port)],
        "worker_pool": [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                        "--service_port", str(pool_port)],
    }
    # The pool starts each SDK worker as `python -c ...` found on PATH: make that this environment's
    # Python (with TFX and watchnext), as the pipeline's image does on a cluster.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    procs = []
    try:
        for (name, command), port in zip(commands.items(), (job_port, pool_port), strict=True):
            log_path = str(logs / f"{name}.log")
            with open(log_path, "w", encoding="utf-8") as log:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
            procs.append(proc)
            _wait_for_port(port, proc, log_path)
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
    finally:
        for proc in procs:  # their whole process groups: the pool's SDK workers too
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _run_to_transform(config, logs_dir: str, root: str, beam_args: list[str]) -> None:
    from watchnext.pipeline.pipeline import create_pipeline

    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as pipeline_lib

    pipeline = create_pipeline(
        config, logs_dir=logs_dir, pipeline_root=os.path.join(root, "tfx"),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "mlmd.sqlite")),
        beam_pipeline_args=beam_args, custom_resolvers=False)
    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=pipeline_lib.RunOptions(to_nodes=[LAST]))


@pytest.fixture(scope="module")
def runs(beam_services, tmp_path_factory):
    """{"direct": pipeline root, "portable": pipeline root} of the same span up to Transform."""
    from watchnext.cli import simulated_logs
    from watchnext.core.config import load_config
    from watchnext.pipeline.beam import beam_pipeline_args

    job_endpoint, pool = beam_services
    work = tmp_path_factory.mktemp("portable")
    config = load_config(None, {**TINY, "pipeline": {"output_dir": str(work / "direct")}})
    logs = simulated_logs(config, str(work / "logs"))
    portable = load_config(None, {**TINY, "pipeline": {
        "output_dir": str(work / "portable"), "beam_preset": "spark", "beam_job_endpoint": job_endpoint,
        "beam_environment_type": "EXTERNAL", "beam_environment_config": pool}})
    args = beam_pipeline_args(portable)
    assert args[:4] == ["--runner=PortableRunner", f"--job_endpoint={job_endpoint}",
                        "--environment_type=EXTERNAL", "--job_server_timeout=86400"], args
    roots = {"direct": str(work / "direct"), "portable": str(work / "portable")}
    _run_to_transform(config, logs, roots["direct"], beam_pipeline_args(config))
    _run_to_transform(portable, logs, roots["portable"], args)
    return roots


def _one(pattern: str) -> str:
    found = sorted(glob.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def _records(folder: str) -> list[bytes]:
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(folder, "*.gz")))
    assert files, folder
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


Features = dict[str, tuple[str, tuple]]


def _features(serialized: bytes) -> Features:
    """A tf.Example as {feature: (kind, values)}: its meaning, without the map's byte order."""
    from tensorflow.core.example import example_pb2

    features = example_pb2.Example.FromString(serialized).features.feature
    out = {}
    for name in features:
        kind = features[name].WhichOneof("kind")
        out[name] = (kind, tuple(getattr(features[name], kind).value) if kind else ())
    return out


def _by_impression(records: list[bytes]) -> dict[tuple, Features]:
    """Examples by impression key (request_id, candidate_video_id); a key seen twice fails."""
    out: dict[tuple, Features] = {}
    for record in records:
        features = _features(record)
        key = (features["request_id"][1], features["candidate_video_id"][1])
        assert key not in out, f"impression {key} twice"
        out[key] = features
    return out


def assert_same_examples(direct: list[bytes], portable: list[bytes]) -> None:
    """Same examples, by impression, feature by feature (kinds and values exactly, floats as the
    float32 values they hold); not the same bytes (see the module docstring)."""
    assert direct, "no examples"
    left, right = _by_impression(direct), _by_impression(portable)
    assert len(portable) == len(direct), (len(direct), len(portable))
    missing, extra = sorted(set(left) - set(right)), sorted(set(right) - set(left))
    assert not missing and not extra, (
        f"{len(missing)} impressions only in the direct run, e.g. {missing[:3]}; "
        f"{len(extra)} only in the portable run, e.g. {extra[:3]}")
    differing = {}
    for key, features in left.items():
        other = right[key]
        if features != other:
            differing[key] = {name: (features.get(name), other.get(name))
                              for name in sorted(set(features) | set(other))
                              if features.get(name) != other.get(name)}
    assert not differing, f"{len(differing)} impressions differ, e.g. {list(differing.items())[:3]}"


def _canonical(records: list[bytes]) -> list[bytes]:
    """Each example re-serialized with sorted feature keys (deterministic), sorted: equal lists
    mean the same multiset of examples (for outputs without an impression key)."""
    from tensorflow.core.example import example_pb2

    return sorted(example_pb2.Example.FromString(r).SerializeToString(deterministic=True) for r in records)


def _row_key(features: Features) -> tuple:
    """Sort key of a transformed example: its exact (integer and bytes) values, then its floats
    to 4 decimals (ties among identical ids are rare; a straddled rounding would show as a
    mismatch, not pass unseen)."""
    exact = tuple((n, v) for n, (k, v) in sorted(features.items()) if k != "float_list")
    rounded = tuple((n, tuple(round(x, 4) for x in v)) for n, (k, v) in sorted(features.items())
                    if k == "float_list")
    return exact, rounded


def assert_same_transformed(direct: list[bytes], portable: list[bytes], where: str,
                            rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """The same multiset of transformed examples: ids, labels and types exactly, floats to rounding.

    Transform's analyzers (the mean and variance that z-score a numeric feature) sum partial
    results in the order the runner's bundles and BatchElements' adaptive batches give them,
    and those depend on timing, so the last bits of a z-scored value may differ between two
    runs of either runner (seen under load); the transformed-features check above uses the
    same tolerance.
    """
    import numpy as np

    a = sorted((_features(r) for r in direct), key=_row_key)
    b = sorted((_features(r) for r in portable), key=_row_key)
    assert len(a) == len(b), (where, len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert {n: k for n, (k, _) in x.items()} == {n: k for n, (k, _) in y.items()}, (where, i)
        for name, (kind, values) in x.items():
            other = y[name][1]
            if kind == "float_list":
                np.testing.assert_allclose(values, other, rtol=rtol, atol=atol,
                                           err_msg=f"{where} row {i} {name}")
            else:
                assert values == other, (where, i, name)


def test_transformed_comparison_allows_float_rounding_but_not_other_changes():
    """assert_same_transformed (not slow): rows in another order and floats a few ulps apart are the
    same; a changed id, a lost row or a float off by more than rounding is not."""
    from tensorflow.core.example import example_pb2

    def example(vid: int, z: float) -> bytes:
        e = example_pb2.Example()
        e.features.feature["video"].int64_list.value.append(vid)
        e.features.feature["duration_z"].float_list.value.append(z)
        return e.SerializeToString()

    rows = [example(1, 0.25), example(2, -1.5), example(3, 2.0)]
    assert_same_transformed(rows, [example(3, 2.0000002), example(1, 0.25), example(2, -1.5000001)], "t")
    for bad in ([example(1, 0.25), example(2, -1.5)],
                [example(1, 0.25), example(4, -1.5), example(3, 2.0)],
                [example(1, 0.25), example(2, -1.4), example(3, 2.0)]):
        with pytest.raises(AssertionError):
            assert_same_transformed(rows, bad, "t")


def test_the_comparison_sees_lost_duplicated_and_altered_examples_but_not_the_byte_order():
    """assert_same_examples (not slow): equal for the same examples serialized in another feature
    order, and fails for each way a run could go wrong."""
    from tensorflow.core.example import example_pb2

    def example(rid: str, cid: str, watch: float, order: list[str]) -> bytes:
        e = example_pb2.Example()
        values = {"request_id": rid.encode(), "candidate_video_id": cid.encode(), "watch_time": watch,
                  "click": 1}
        for name in order:  # another insertion order too; the bytes' order is the map's own
            feature = e.features.feature[name]
            value = values[name]
            if isinstance(value, bytes):
                feature.bytes_list.value.append(value)
            elif isinstance(value, float):
                feature.float_list.value.append(value)
            else:
                feature.int64_list.value.append(value)
        return e.SerializeToString()

    names = ["request_id", "candidate_video_id", "watch_time", "click"]
    one = [example("r1", "a", 3.5, names), example("r1", "b", 0.0, names), example("r2", "a", 1.0, names)]
    reordered = [example("r1", "a", 3.5, names[::-1]), example("r1", "b", 0.0, names[1:] + names[:1]),
                 example("r2", "a", 1.0, names)]
    assert_same_examples(one, reordered)
    assert _canonical(one) == _canonical(reordered)
    for wrong in (one[:2],                                          # lost
                  [*one, one[0]],                                   # duplicated
                  [*one, example("r3", "a", 1.0, names)],           # added
                  [*one[:2], example("r2", "a", 1.0000001, names)],  # altered float
                  [*one[:2], example("r2", "a", 1.0, names[:3])]):  # feature lost
        with pytest.raises(AssertionError):
            assert_same_examples(one, wrong)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "eval"])
def test_the_examples_are_the_same(runs, split):
    direct, portable = (_records(_one(os.path.join(root, "tfx", "LogExampleGen", "examples", "*",
                                                   f"Split-{split}"))) for root in (runs["direct"],
                                                                                  runs["portable"]))
    assert_same_examples(direct, portable)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "eval"])
def test_statistics_agree(runs, split):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    def stats(root: str) -> dict:
        path = _one(os.path.join(root, "tfx", "StatisticsGen", "statistics", "*", f"Split-{split}",
                                 "FeatureStats.pb"))
        with open(path, "rb") as f:
            (dataset,) = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()).datasets
        features = {}
        for feature in dataset.features:
            common = (feature.num_stats.common_stats if feature.HasField("num_stats")
                      else feature.string_stats.common_stats)
            features[feature.path.step[0]] = (common.num_non_missing, common.num_missing,
                                              common.tot_num_values)
        return {"num_examples": dataset.num_examples, "features": features}

    direct, portable = stats(runs["direct"]), stats(runs["portable"])
    assert direct["num_examples"] > 0 and direct == portable


@pytest.mark.slow
def test_the_transform_graphs_transform_alike(runs):
    """Same vocabularies, and the same transformed features from each graph on the same raw examples."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    outputs = {name: tft.TFTransformOutput(_one(os.path.join(root, "tfx", "Transform", "transform_graph",
                                                             "*")))
               for name, root in runs.items()}
    direct, portable = outputs["direct"], outputs["portable"]
    vocabularies = sorted(os.listdir(os.path.join(direct.transform_savedmodel_dir, "assets")))
    assert vocabularies
    for name in vocabularies:
        assert direct.vocabulary_by_name(name) == portable.vocabulary_by_name(name), name
    raw = _records(_one(os.path.join(runs["direct"], "tfx", "LogExampleGen", "examples", "*", "Split-eval")))
    batch = tf.constant(raw[:256])
    spec = direct.raw_feature_spec()
    assert spec == portable.raw_feature_spec()
    got = {name: out.transform_features_layer()(tf.io.parse_example(batch, spec))
           for name, out in outputs.items()}
    assert set(got["direct"]) == set(got["portable"])
    for key, value in got["direct"].items():
        other = got["portable"][key]
        if isinstance(value, tf.SparseTensor):
            value, other = tf.sparse.to_dense(value), tf.sparse.to_dense(other)
        np.testing.assert_allclose(value.numpy(), other.numpy(), rtol=1e-6, err_msg=key)
    # And the materialized transformed examples agree too (as examples: see the module docstring).
    for split in ("train", "eval"):
        direct_rows, portable_rows = (
            _records(_one(os.path.join(root, "tfx", "Transform", "transformed_examples", "*",
                                       f"Split-{split}")))
            for root in (runs["direct"], runs["portable"]))
        # No impression key survives Transform: the same multiset of examples, floats to rounding.
        assert direct_rows, split
        assert_same_transformed(direct_rows, portable_rows, split)
