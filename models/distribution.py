"""The tf.distribute strategy the Trainer builds and fits the model under.

`training.distribution` names it:
- default: no distribution, TensorFlow's default strategy (one device).
- mirrored: synchronous data parallelism over this machine's devices: every GPU, or,
  without GPUs, every logical CPU device (one, unless the process split the CPU).
  Each step splits the global batch (`training.batch_size`) evenly over the replicas.
- multi_worker_mirrored: the same over several machines; the cluster and this
  worker's place in it come from the TF_CONFIG environment variable, set by whatever
  launches the workers (e.g. a Vertex AI training job). Without TF_CONFIG it runs as
  a single worker. TensorFlow requires this strategy to be created before any other
  TensorFlow op runs in the process, so the Trainer must build it first.

Batch semantics under every strategy: `training.batch_size` is the GLOBAL batch, the
examples one optimizer step consumes. With N replicas in sync (workers × devices per
worker) each replica computes the gradient of its own batch_size / N examples, and the
replicas' gradients are summed into one step (Keras scales each replica's loss by 1/N).
So adding workers with batch_size unchanged takes the same steps on the same examples,
each replica doing 1/N of the work; to keep each replica's work constant instead, raise
batch_size N-fold (and the learning rate with it, see training.batch_size). The step
budget (`training.train_steps`, or epochs × ⌈examples / batch_size⌉) counts global steps,
the same on every worker.

Every worker runs all of run_fn (the collective ops of a step, an evaluation and a save
need all of them), but only the chief may write the Trainer's outputs: `chief_writes`
gives the others a temporary folder that is removed once written (TensorFlow's documented
pattern for saving under MultiWorkerMirroredStrategy).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, ConfigError

import tensorflow as tf

log = logging.getLogger(__name__)


def local_devices() -> list[str]:
    """Names of the devices a mirrored strategy replicates over: the GPUs, else the CPUs."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [d.name for d in devices]


def strategy_from_config(config: Config) -> tf.distribute.Strategy:
    """The strategy named by `config.training.distribution`; build and compile the model in its scope."""
    name = config.training.distribution
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = local_devices()
        log.info("MirroredStrategy over %s", devices)
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker_mirrored":
        _check_tf_config(os.environ.get("TF_CONFIG", ""))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        log.info("MultiWorkerMirroredStrategy: %d replicas in sync", strategy.num_replicas_in_sync)
        return strategy
    raise ConfigError(f"config key training.distribution: {name!r} is not a known strategy")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the Trainer's outputs.

    Single-process strategies: always. Multi-worker: the task of type "chief", or, in a
    cluster without one, worker 0 (TensorFlow's convention; e.g. Vertex AI names its first
    worker pool "chief" in TF_CONFIG). Read from the strategy's cluster resolver, which
    parsed TF_CONFIG.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    cluster = resolver.cluster_spec().as_dict()
    first_worker = task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster
    return task_type == "chief" or first_worker


@contextlib.contextmanager
def chief_writes(strategy: tf.distribute.Strategy, path: str) -> Iterator[str]:
    """Where this process should write what belongs at `path`: `path` itself on the chief;
    elsewhere a path in a fresh local temporary folder, removed (with what was written
    there) when the block ends, normally or not.

    Why not skip the write on the other workers: saving a model distributed by
    MultiWorkerMirroredStrategy may run collective ops, which every worker must join,
    so every worker saves and only the chief's copy is kept. The temporary folder is on
    the worker's own disk, so nothing of a non-chief ever lands in the Trainer's artifacts.
    """
    if is_chief(strategy):
        yield path
        return
    resolver = strategy.cluster_resolver
    temp = tempfile.mkdtemp(prefix=f"watchnext-{resolver.task_type}{resolver.task_id}-")
    log.info("not the chief (%s %d): writing %s to %s, then removing it", resolver.task_type,
             resolver.task_id, path, temp)
    try:
        yield os.path.join(temp, os.path.basename(path.rstrip("/")) or "output")
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def cluster_workers() -> int:
    """Processes in the TF_CONFIG cluster that train (chief and worker tasks); 1 without TF_CONFIG."""
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return 1
    _check_tf_config(text)
    cluster = json.loads(text)["cluster"]
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def with_input_sharding(dataset: tf.data.Dataset, file_patterns: list[str], repeat: bool) -> tf.data.Dataset:
    """`dataset` with the auto-shard policy that splits it across this cluster's workers safely.

    Keras distributes a dataset over the workers by its AUTO policy: FILE (each worker reads
    its own files) when it finds a file reader, and then fails at the first step if there are
    fewer files than workers ("Could not apply FILE based sharding"): a small Transform output
    is one file. So, in a cluster: FILE when a repeated dataset has at least one file per
    worker (each file read by one worker: the I/O scales out), else DATA (every worker reads
    every file and keeps its share of each global batch). A finite dataset (one pass over the
    eval split) always gets DATA: with FILE, workers given unequal files would run unequal
    numbers of steps and the evaluation's collective ops would wait forever.
    Outside a cluster the dataset is returned unchanged.
    """
    workers = cluster_workers()
    if workers <= 1:
        return dataset
    files = len({f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)})
    policy = tf.data.experimental.AutoShardPolicy
    chosen = policy.FILE if repeat and files >= workers else policy.DATA
    log.info("input %s: %d file(s) over %d workers, sharded by %s", file_patterns, files, workers,
             chosen.name)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = chosen
    return dataset.with_options(options)


def _check_tf_config(text: str) -> None:
    """Fail early, and say why, on a TF_CONFIG that TensorFlow would reject less clearly."""
    if not text:
        log.info("TF_CONFIG is not set: MultiWorkerMirroredStrategy runs as a single worker")
        return
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {text[:200]!r}") from None
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError("TF_CONFIG needs a 'cluster' mapping of job name to addresses and a 'task' "
                         f"mapping with 'type' and 'index'; got {text[:200]!r}")
    workers = cluster.get(task.get("type"), [])
    if not isinstance(task.get("index"), int) or not 0 <= task["index"] < len(workers):
        raise ValueError(f"TF_CONFIG task {task} does not name one of the cluster's "
                         f"{len(workers)} {task.get('type')!r} addresses")
