"""Beam flags for every Beam-powered component, from one named preset in the config.

`pipeline.beam_preset` picks where StatisticsGen, Transform and the
ExampleGen run their Beam work; `pipeline.beam_args` is appended after the preset's
flags, so a flag given there wins (Beam parses its flags with argparse: the last
occurrence of a flag is the one kept).

- direct: DirectRunner in one process, in memory. Small logs; the default.
- direct-multiprocess: DirectRunner with `beam_workers` worker processes on this
  machine. A multi-core machine without a cluster.
- dataflow: Google Cloud Dataflow, autoscaling up to `beam_workers` workers that run
  the pipeline's image (`--sdk_container_image`), which holds TFX and watchnext.
- flink, spark: a portable Beam job server (`beam_job_endpoint`) in front of a Flink
  or Spark cluster; its SDK workers are found or started as `beam_environment_type`
  says. They too need TFX and watchnext: the pipeline's image, or a worker pool
  running it (EXTERNAL, the usual sidecar set-up on Kubernetes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, ConfigError, PipelineSection

# Where a portable runner's EXTERNAL environment finds the Beam worker pool by default:
# the port of `apache/beam_python3.10_sdk --worker_pool` run as a sidecar of each task manager.
DEFAULT_WORKER_POOL = "localhost:50000"


def _direct(p: PipelineSection, image: str) -> list[str]:
    return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _direct_multiprocess(p: PipelineSection, image: str) -> list[str]:
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={p.beam_workers}"]


def _dataflow(p: PipelineSection, image: str) -> list[str]:
    if not image and not _has_flag(p.beam_args, "--sdk_container_image"):
        raise ConfigError("config key pipeline.beam_preset: dataflow workers need TFX and watchnext "
                          "installed: pass the pipeline's image (e.g. compile-kubeflow --image) or "
                          "add --sdk_container_image=IMAGE to pipeline.beam_args")
    args = ["--runner=DataflowRunner", f"--project={p.dataflow_project}", f"--region={p.dataflow_region}",
            f"--temp_location={p.dataflow_temp_location}", f"--max_num_workers={p.beam_workers}"]
    if image:
        args.append(f"--sdk_container_image={image}")
    return args


def _portable(p: PipelineSection, image: str) -> list[str]:
    args = ["--runner=PortableRunner", f"--job_endpoint={p.beam_job_endpoint}",
            f"--environment_type={p.beam_environment_type}",
            # Also the deadline of the job's state stream: Beam's 60 s would fail any longer job.
            f"--job_server_timeout={p.beam_job_server_timeout}"]
    config = p.beam_environment_config
    if p.beam_environment_type == "EXTERNAL":
        config = config or DEFAULT_WORKER_POOL
    elif p.beam_environment_type == "DOCKER":
        config = config or image
        if not config:
            raise ConfigError("config key pipeline.beam_environment_config: beam_environment_type DOCKER "
                              "needs the SDK worker image (one with TFX and watchnext installed); set "
                              "it, or pass the pipeline's image (compile-kubeflow --image)")
    if config:
        args.append(f"--environment_config={config}")
    return args


def _flink(p: PipelineSection, image: str) -> list[str]:
    return [*_portable(p, image), f"--parallelism={p.beam_workers}"]


def _spark(p: PipelineSection, image: str) -> list[str]:
    return _portable(p, image)


# One per name in core.config.BEAM_PRESETS (the config validates the name).
PRESETS: dict[str, Callable[[PipelineSection, str], list[str]]] = {
    "direct": _direct,
    "direct-multiprocess": _direct_multiprocess,
    "dataflow": _dataflow,
    "flink": _flink,
    "spark": _spark,
}


def beam_pipeline_args(config: Config, image: str = "") -> list[str]:
    """The Beam flags for `config.pipeline.beam_preset`, then `config.pipeline.beam_args`.

    image: the container image the pipeline's components run in (Kubeflow); dataflow
    and DOCKER portable workers run it too, so that they have TFX and watchnext.
    """
    p = config.pipeline
    args = [*PRESETS[p.beam_preset](p, image), *p.beam_args]
    check_beam_args(args)
    return args


def check_beam_args(args: list[str]) -> dict[str, Any]:
    """Parse `args` as Beam itself will; return the options, or raise ConfigError naming the bad flag.

    A typo in a preset or in pipeline.beam_args would otherwise surface on the cluster, or
    not at all: Beam only logs "Discarding unparseable args" and runs without the flag.
    Checked here: every flag is one of Beam's pipeline options, every value parses (runner
    modes, environment types, numbers), and the runner is one Beam knows.
    """
    import contextlib
    import io

    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import create_runner

    known = set(PipelineOptions([]).get_all_options())
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            parsed = PipelineOptions(list(args)).get_all_options(retain_unknown_options=True)
    except SystemExit:
        error = usage.getvalue().strip().splitlines()[-1:] or ["a flag's value does not parse"]
        raise ConfigError(f"config key pipeline (Beam flags {list(args)}): {error[0]}") from None
    unknown = sorted(set(parsed) - known)
    if unknown:
        raise ConfigError(f"config key pipeline.beam_args: Beam has no pipeline option {unknown} "
                          f"(from the flags {list(args)}); Beam would drop it silently")
    if parsed.get("runner"):
        try:
            create_runner(parsed["runner"])
        except ValueError as e:
            raise ConfigError(f"config key pipeline.beam_args: --runner={parsed['runner']}: {e}") from None
    return parsed


def _has_flag(args: tuple[str, ...] | list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)
