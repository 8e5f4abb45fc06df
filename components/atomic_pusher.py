"""AtomicPusher: TFX's Pusher, but a model server never sees a half-written version.

The stock Pusher copies the model straight into `<base>/<version>/`; a server that
polls the folder (TF Serving does, every few seconds) can find that directory while
its variables are still being copied. This executor copies into a hidden staging
folder beside it (`.staging-<version>`; TF Serving only loads all-digit names), then
renames it into place: one atomic step on a local or POSIX filesystem. It also
- picks a version strictly greater than every one already there (two pushes in the
  same second do not collide and "latest" is always the newest push);
- removes staging folders left by a crash before it starts;
- keeps only the newest `keep_versions` versions, never the one it just pushed.

On object stores (GCS, S3) a rename is a copy and a delete, not atomic; there the
hidden staging name still keeps TF Serving from loading a partial version, and the
final directory appears with `saved_model.pb` copied last.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

log = logging.getLogger(__name__)

KEEP_VERSIONS_KEY = "keep_versions"
STAGING_PREFIX = ".staging-"


def version_dirs(base: str) -> list[int]:
    """The numeric version folders under `base`, oldest first."""
    if not fileio.exists(base):
        return []
    names = [n.rstrip("/") for n in fileio.listdir(base)]
    return sorted(int(n) for n in names if n.isdigit())


def next_version(base: str, now: float | None = None) -> int:
    """A UNIX-time version, bumped past the newest existing one if the clock has not moved."""
    existing = version_dirs(base)
    candidate = int(now if now is not None else time.time())
    return max([candidate, *(v + 1 for v in existing[-1:])])


def publish(model_path: str, base: str, version: int) -> str:
    """Copy `model_path` to `base/version` through a hidden staging folder; return the path."""
    fileio.makedirs(base)
    final = os.path.join(base, str(version))
    staging = os.path.join(base, f"{STAGING_PREFIX}{version}")
    if fileio.exists(staging):
        fileio.rmtree(staging)
    # saved_model.pb last: on stores without atomic rename it marks the copy complete.
    io_utils.copy_dir(model_path, staging, deny_regex_patterns=[r"saved_model\.pb"])
    io_utils.copy_file(os.path.join(model_path, "saved_model.pb"), os.path.join(staging, "saved_model.pb"))
    if base.startswith(("gs://", "s3://")):
        fileio.rename(staging, final)
    else:
        os.replace(staging, final)  # atomic on one POSIX filesystem
    return final


def clean_staging(base: str) -> list[str]:
    """Remove staging folders a crashed push left behind; return what was removed."""
    if not fileio.exists(base):
        return []
    removed = []
    for name in fileio.listdir(base):
        name = name.rstrip("/")
        if name.startswith(STAGING_PREFIX):
            path = os.path.join(base, name)
            fileio.rmtree(path)
            removed.append(path)
    return removed


def retain(base: str, keep: int, protect: int) -> list[int]:
    """Delete all but the newest `keep` versions (never `protect`); return the deleted ones."""
    versions = version_dirs(base)
    doomed = [v for v in versions[:-keep] if v != protect] if keep > 0 else []
    for v in doomed:
        fileio.rmtree(os.path.join(base, str(v)))
    return doomed


class AtomicPushExecutor(pusher_executor.Executor):
    """Pusher executor that stages, renames and prunes (see module docstring)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        for path in clean_staging(base):
            log.warning("removed a staging folder left by an interrupted push: %s", path)
        version = next_version(base)
        serving_path = publish(model_path, base, version)
        log.info("pushed model version %d to %s", version, serving_path)
        custom = _custom_config(exec_properties)
        keep = int(custom.get(KEEP_VERSIONS_KEY, 0))
        deleted = retain(base, keep, protect=version)
        if deleted:
            log.info("kept the newest %d versions; deleted %s", keep, deleted)
        io_utils.copy_dir(model_path, model_push.uri)  # the archive copy, as the stock Pusher keeps
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))


def _custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The Pusher's custom_config (serialized as JSON in exec properties)."""
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    return json.loads(raw) if isinstance(raw, str) and raw else dict(raw or {})


def make_atomic_pusher(model: Any, model_blessing: Any, base_directory: str,
                       keep_versions: int) -> tfx.components.Pusher:
    """A Pusher that publishes through AtomicPushExecutor into `base_directory/<version>`."""
    return tfx.components.Pusher(
        model=model,
        model_blessing=model_blessing,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=base_directory)),
        custom_config={KEEP_VERSIONS_KEY: keep_versions},
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPushExecutor),
    )
