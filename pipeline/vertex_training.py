"""The compiled Trainer as a Vertex AI custom job of several replicas (training.vertex_workers).

TFX 1.16's Vertex training extension (`tfx.extensions.google_cloud_ai_platform.Trainer`)
runs the same run_fn, but inside a Vertex AI CustomJob it submits from the Trainer's
container: its custom_config carries the job under `ai_platform_training_args`
(`project` and a CustomJob `job_spec` whose `worker_pool_specs` list the machines), with
`ai_platform_enable_vertex` and `ai_platform_vertex_region`. The extension fills in each
pool's container command (TFX's run_executor entry point); the image is ours, so that the
replicas have watchnext. Vertex AI then sets TF_CONFIG on every replica, naming pool 0
"chief" and pool 1 "worker", which is what MultiWorkerMirroredStrategy and
`models.distribution.is_chief` read.

    pool 0: 1 × vertex_machine_type, the chief: trains, and alone writes the model
    pool 1: (vertex_workers − 1) × vertex_machine_type, the workers
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, ConfigError


def worker_pool_specs(config: Config, image: str) -> list[dict[str, Any]]:
    """Vertex AI worker pools for `config.training.vertex_workers` replicas of `image`."""
    t = config.training
    if t.vertex_workers < 1:
        raise ConfigError("config key training.vertex_workers: 0 means no Vertex AI job; nothing to build")

    def pool(replicas: int) -> dict[str, Any]:
        return {"machine_spec": {"machine_type": t.vertex_machine_type}, "replica_count": replicas,
                "container_spec": {"image_uri": image}}

    pools = [pool(1)]
    if t.vertex_workers > 1:
        pools.append(pool(t.vertex_workers - 1))
    return pools


def vertex_trainer(config: Config, custom_config: dict[str, Any], image: str) -> tuple[type, dict[str, Any]]:
    """(Trainer component class, its custom_config): TFX's own Trainer and `custom_config`
    unchanged unless `image` is given (a Kubeflow compilation) and training.vertex_workers > 0;
    then the Vertex extension's Trainer with the job added to custom_config."""
    from tfx import v1 as tfx

    t = config.training
    if not image or not t.vertex_workers:
        return tfx.components.Trainer, custom_config
    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.extensions.google_cloud_ai_platform.trainer import executor

    job = {"project": t.vertex_project, "job_spec": {"worker_pool_specs": worker_pool_specs(config, image)}}
    return tfx.extensions.google_cloud_ai_platform.Trainer, {
        **custom_config,
        constants.ENABLE_VERTEX_KEY: True,
        constants.VERTEX_REGION_KEY: t.vertex_region,
        executor.TRAINING_ARGS_KEY: job,
    }
