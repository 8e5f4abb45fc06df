"""`pipeline`: where the pipeline runs and writes, and on which Beam runner."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from watchnext.core.config.checks import check, one_of

BEAM_PRESETS = ("direct", "direct-multiprocess", "dataflow", "flink", "spark")
BEAM_ENVIRONMENT_TYPES = ("EXTERNAL", "DOCKER", "PROCESS", "LOOPBACK")


@dataclass(frozen=True)
class PipelineSection:
    """Where the pipeline runs and writes."""

    name: str = "watchnext"
    output_dir: str = "watchnext_output"
    enable_cache: bool = True
    # Where every Beam-powered component runs (flags made by pipeline/beam.py): direct (in
    # memory, one process), direct-multiprocess (beam_workers local processes), dataflow, or
    # flink/spark (a portable Beam job server at beam_job_endpoint).
    beam_preset: Literal["direct", "direct-multiprocess", "dataflow", "flink", "spark"] = "direct"
    # direct-multiprocess: worker processes; dataflow: max_num_workers; flink: parallelism.
    beam_workers: int = 2
    # Extra Beam flags appended after the preset's (a later flag wins).
    beam_args: tuple[str, ...] = ()
    # dataflow: GCP project, region, and a gs:// folder for temporary and staging files.
    dataflow_project: str = ""
    dataflow_region: str = ""
    dataflow_temp_location: str = ""
    # flink, spark: the job server (host:port) and how it starts the Python SDK workers:
    # EXTERNAL (a worker pool at beam_environment_config, default localhost:50000), DOCKER
    # (the image in beam_environment_config, default the pipeline's image), PROCESS, LOOPBACK.
    beam_job_endpoint: str = ""
    beam_environment_type: Literal["EXTERNAL", "DOCKER", "PROCESS", "LOOPBACK"] = "EXTERNAL"
    beam_environment_config: str = ""
    # flink, spark: Beam's --job_server_timeout, in seconds. Beam's Python PortableRunner also
    # applies it as the deadline of the job's state and message streams, so with Beam's default
    # (60) any component whose Beam job runs longer than a minute fails with DEADLINE_EXCEEDED
    # (seen on the loopback job service). 86400: a day, the longest a daily run may take.
    beam_job_server_timeout: int = 86400

    def validate(self, path: str = "pipeline") -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        check(re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name) is not None,
              f"{path}.name", f"{self.name!r} must match [a-z0-9][a-z0-9-]* (Kubeflow pipeline names)")
        one_of(self.beam_preset, BEAM_PRESETS, f"{path}.beam_preset")
        one_of(self.beam_environment_type, BEAM_ENVIRONMENT_TYPES, f"{path}.beam_environment_type")
        check(self.beam_workers >= 1, f"{path}.beam_workers", "must be >= 1")
        check(self.beam_job_server_timeout >= 1, f"{path}.beam_job_server_timeout", "must be >= 1 (seconds)")
        if self.beam_preset == "dataflow":
            for key in ("dataflow_project", "dataflow_region", "dataflow_temp_location"):
                check(bool(getattr(self, key)), f"{path}.{key}", "is needed by beam_preset dataflow")
            check(self.dataflow_temp_location.startswith("gs://"), f"{path}.dataflow_temp_location",
                  f"{self.dataflow_temp_location!r} must be a gs:// folder")
        if self.beam_preset in ("flink", "spark"):
            check(bool(self.beam_job_endpoint), f"{path}.beam_job_endpoint",
                  f"is needed by beam_preset {self.beam_preset} (the job server's host:port)")
            check(self.beam_environment_type != "PROCESS" or bool(self.beam_environment_config),
                  f"{path}.beam_environment_config", "is needed by beam_environment_type PROCESS")
