"""The Trainer's real `run_fn` on a cluster of local processes talking over loopback.

What a Vertex AI (or any TF_CONFIG-setting) training job does with several workers, on one
machine: every process gets the same FnArgs and its own TF_CONFIG (task 0 the chief, the
others workers, each on a free 127.0.0.1 port), and runs `run_fn` with
`training.distribution: multi_worker_mirrored`. MultiWorkerMirroredStrategy then speaks
the same gRPC collective protocol it speaks between machines. Used by the multi-worker
test (tests/models/test_multi_worker.py) and benchmark (benchmarks/multi_worker.py).

    python -m watchnext.models.multi_worker SPEC.json RESULT.json   # one process; TF_CONFIG from env

FnArgs hold a DataAccessor (functions), so each process rebuilds them from a JSON
`TrainerInputs`, the way TFX's Trainer builds them from its input artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.core.contract import CONFIG_KEY

SPLITS = ("train", "eval")


@dataclass(frozen=True)
class TrainerInputs:
    """What one Trainer process needs, as plain values (JSON): the FnArgs TFX would build."""

    examples_uri: str  # a transformed Examples artifact's folder: Split-train/, Split-eval/
    transform_dir: str  # the Transform graph (TFTransformOutput's folder)
    serving_model_dir: str
    model_run_dir: str
    working_dir: str
    config_json: str
    train_steps: int
    eval_steps: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainerInputs:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class WorkerResult:
    """What one process reports after run_fn returned."""

    task_type: str | None  # None: no TF_CONFIG (a single process)
    task_id: int
    chief: bool
    replicas: int  # replicas in sync of the strategy run_fn built
    fit_seconds: float  # wall time of model.fit (training steps and validations)
    run_seconds: float  # wall time of the whole run_fn (fit, evaluation, export)
    global_steps: int  # optimizer steps taken (each of training.batch_size examples, all replicas)


def link_examples(train_files: list[str], uri: str) -> str:
    """An Examples artifact folder at `uri` whose splits are links to `train_files` (gzipped
    TFRecords of transformed examples, as featurized_simulation writes them): both splits
    read them, since the featurized simulation transforms only its train split."""
    for split in SPLITS:
        folder = os.path.join(uri, f"Split-{split}")
        os.makedirs(folder, exist_ok=True)
        for i, path in enumerate(train_files):
            link = os.path.join(folder, f"part-{i:05d}.gz")  # tfx_bsl reads *.gz as GZIP
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(path), link)
    return uri


def fn_args(inputs: TrainerInputs) -> Any:
    """tfx.components.FnArgs for `inputs`, with the DataAccessor TFX's Trainer gives run_fn."""
    from tfx import v1 as tfx
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import examples_utils, tfxio_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    examples = standard_artifacts.Examples()
    examples.uri = inputs.examples_uri
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    accessor = DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], ["Trainer"]),
        record_batch_factory=None, data_view_decode_fn=None)

    def files(split: str) -> list[str]:
        return [io_utils.all_files_pattern(u) for u in artifact_utils.get_split_uris([examples], split)]

    return tfx.components.FnArgs(
        working_dir=inputs.working_dir, train_files=files("train"), eval_files=files("eval"),
        train_steps=inputs.train_steps, eval_steps=inputs.eval_steps,
        transform_graph_path=inputs.transform_dir, transform_output=inputs.transform_dir,
        serving_model_dir=inputs.serving_model_dir, model_run_dir=inputs.model_run_dir,
        data_accessor=accessor, custom_config={CONFIG_KEY: inputs.config_json})


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on 127.0.0.1 now (held open together so that they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(ports: list[int]) -> list[str]:
    """TF_CONFIG of each process: the first port is the chief's, the rest workers'."""
    addresses = [f"127.0.0.1:{p}" for p in ports]
    cluster = {"chief": addresses[:1]}
    if len(addresses) > 1:
        cluster["worker"] = addresses[1:]
    tasks = [("chief", 0)] + [("worker", i) for i in range(len(addresses) - 1)]
    return [json.dumps({"cluster": cluster, "task": {"type": t, "index": i}}) for t, i in tasks]


class ClusterFailed(RuntimeError):
    """A worker process failed or timed out; every process of the cluster has been killed."""


def run_processes(inputs: TrainerInputs, processes: int, work_dir: str, timeout_s: float = 600.0,
                  env: dict[str, str] | None = None) -> list[WorkerResult]:
    """Run run_fn in `processes` local processes (1: no TF_CONFIG; more: a loopback cluster,
    the config's training.distribution must then be multi_worker_mirrored).

    Each process logs to work_dir/task-<i>.log. If any process fails or the cluster outlives
    `timeout_s`, all are killed (their whole process groups) and ClusterFailed names the
    failing task with the end of its log. Results come back in task order (chief first).
    """
    config = Config.from_json(inputs.config_json)
    if processes > 1 and config.training.distribution != "multi_worker_mirrored":
        raise ValueError(f"{processes} processes need training.distribution multi_worker_mirrored, "
                         f"not {config.training.distribution!r}")
    os.makedirs(work_dir, exist_ok=True)
    spec = os.path.join(work_dir, "inputs.json")
    with open(spec, "w", encoding="utf-8") as f:
        f.write(inputs.to_json())
    configs = tf_configs(free_ports(processes)) if processes > 1 else [""]
    base = {k: v for k, v in (env or os.environ).items() if k != "TF_CONFIG"}
    procs: list[tuple[subprocess.Popen, str, str]] = []
    try:
        for i, tf_config in enumerate(configs):
            log_path = os.path.join(work_dir, f"task-{i}.log")
            result = os.path.join(work_dir, f"task-{i}.json")
            with open(log_path, "w", encoding="utf-8") as log_file:
                child_env = {**base, "TF_CONFIG": tf_config} if tf_config else base
                proc = subprocess.Popen([sys.executable, "-m", "watchnext.models.multi_worker", spec, result],
                                        stdout=log_file, stderr=subprocess.STDOUT, env=child_env,
                                        start_new_session=True)
            procs.append((proc, log_path, result))
        deadline = time.monotonic() + timeout_s
        while any(p.poll() is None for p, _, _ in procs):
            for i, (p, log_path, _) in enumerate(procs):
                if p.poll() not in (None, 0):
                    raise ClusterFailed(f"task {i} exited with {p.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ClusterFailed(f"the cluster ran over {timeout_s:.0f} s; killed. Task 0's log:\n"
                                    f"{_tail(procs[0][1])}")
            time.sleep(0.5)
        for i, (p, log_path, _) in enumerate(procs):
            if p.returncode != 0:
                raise ClusterFailed(f"task {i} exited with {p.returncode}:\n{_tail(log_path)}")
        results = []
        for _, _, path in procs:
            with open(path, encoding="utf-8") as f:
                results.append(WorkerResult(**json.load(f)))
        return results
    finally:
        for p, _, _ in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _tail(path: str, chars: int = 4000) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()[-chars:]


def _main(spec_path: str, result_path: str) -> None:
    """One process: run_fn on the inputs, timing it; the strategy and fit are observed, not changed."""
    import logging

    from watchnext.models import distribution, trainer

    import tf_keras

    # force: absl has already given the root logger a handler that drops INFO.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        force=True)

    with open(spec_path, encoding="utf-8") as f:
        inputs = TrainerInputs.from_json(f.read())
    seen: dict[str, Any] = {}

    def observed_strategy(config: Config) -> Any:
        seen["strategy"] = distribution.strategy_from_config(config)
        return seen["strategy"]

    fit = tf_keras.Model.fit

    def timed_fit(model: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        history = fit(model, *args, **kwargs)
        seen["fit_seconds"] = time.perf_counter() - start
        seen["global_steps"] = int(model.optimizer.iterations.numpy())
        return history

    trainer.strategy_from_config = observed_strategy
    tf_keras.Model.fit = timed_fit
    start = time.perf_counter()
    trainer.run_fn(fn_args(inputs))
    run_seconds = time.perf_counter() - start
    strategy = seen["strategy"]
    resolver = getattr(strategy, "cluster_resolver", None)
    result = WorkerResult(task_type=getattr(resolver, "task_type", None) or None,
                          task_id=int(getattr(resolver, "task_id", 0) or 0),
                          chief=distribution.is_chief(strategy), replicas=strategy.num_replicas_in_sync,
                          fit_seconds=seen["fit_seconds"], run_seconds=run_seconds,
                          global_steps=seen["global_steps"])
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(result), f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m watchnext.models.multi_worker SPEC.json RESULT.json")
    _main(sys.argv[1], sys.argv[2])
