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
"""

from __future__ import annotations

import json
import logging
import os

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
