"""Compile the watchnext pipeline for Kubeflow Pipelines v2 (or Vertex AI Pipelines).

The same `create_pipeline` as the local runner, compiled by TFX's KubeflowV2DagRunner
into a KFP v2 PipelineSpec (schema 2.1) that every component runs from one image
(kubeflow/Dockerfile). What differs from a local run, and why:

- Run-time parameters. An operator sets these per run, in the KFP UI or the run's
  parameter values, without recompiling. TFX's v2 compiler only turns a *whole*
  execution property into a pipeline parameter (a RuntimeParameter nested in a proto
  or dict is serialized as an object and never exposed), and proto-valued properties
  take the proto as JSON text; so each parameter is one component's proto, as JSON:
    train_args    Trainer    TrainArgs, e.g. {"num_steps": 2000}
    range_config  ExampleGen RangeConfig: "" ingests the newest span; a static range
                             re-ingests one, e.g. {"static_range": {"start_span_number":
                             20260102, "end_span_number": 20260102}}
    eval_config   Evaluator  the Evaluator's view of the config (pipeline/cache_keys.py), as
                             JSON: the heads' floors and the evaluation section (tolerances,
                             confidence); build it with `parameter_values`
  Their defaults are what `create_pipeline` compiles in for the config, so a run with
  no parameters set is the local pipeline. TFX parses them ignoring unknown fields (a
  misspelt key is silently dropped): build them with `parameter_values`.
- No span window. TFX's v2 compiler supports only latest-artifact and
  latest-blessed-model resolvers, so the SpanRangeStrategy window is left out and
  Transform and Trainer read the span this run ingested: `data.window_spans` must be 1.
- LogExampleGen is never cached. The v2 runner replaces a FileBasedExampleGen's
  driver with TFX's generic one (tensorflow/tfx#6722), which fingerprints the
  impressions only; late events for an already-ingested span would otherwise hit the
  cache and leave stale labels.
- Beam flags come from `pipeline.beam_preset` (pipeline/beam.py); DataflowRunner and
  DOCKER portable workers run this same image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import watchnext
from watchnext.core.config import Config, ConfigError

log = logging.getLogger("watchnext")

DEFAULT_IMAGE = f"watchnext:{watchnext.__version__}"


@dataclass(frozen=True)
class RuntimeParameterSpec:
    """One execution property an operator may set per run, and where it goes."""

    name: str
    component_id: str
    exec_property: str
    description: str


RUNTIME_PARAMETERS = (
    RuntimeParameterSpec("train_args", "Trainer", "train_args",
                         'TrainArgs as JSON, e.g. {"num_steps": 2000}'),
    RuntimeParameterSpec("range_config", "LogExampleGen", "range_config",
                         'RangeConfig as JSON; empty: the newest span; {"static_range": '
                         '{"start_span_number": 20260102, "end_span_number": 20260102}}: that span'),
    RuntimeParameterSpec("eval_config", "Evaluator", "eval_config",
                         "the Evaluator's config as JSON: per-head floors (value_threshold) and "
                         "evaluation.* (max_auc_drop, max_mse_increase_ratio, confidence)"),
)
# Components whose KFP cache must stay off (see the module docstring).
NEVER_CACHED = ("LogExampleGen",)


def _compact_json(value: Any) -> str:
    """A proto execution property as one-line JSON text (what the executors parse), "" for None."""
    from google.protobuf import json_format, message

    if value is None or value == "":
        return ""
    if isinstance(value, message.Message):
        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    elif isinstance(value, str):  # some components keep their protos as JSON text already
        value = json.loads(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    raise TypeError(f"cannot expose an execution property of type {type(value).__name__} "
                    "as a pipeline parameter")


def bind_runtime_parameters(pipeline: Any) -> dict[str, str]:
    """Turn each property in RUNTIME_PARAMETERS into a RuntimeParameter; return name → default.

    The default is the property's compiled-in value, so `create_pipeline` stays the
    one place that decides what a run does when nobody overrides it.
    """
    from tfx import v1 as tfx

    components = {c.id: c for c in pipeline.components}
    defaults: dict[str, str] = {}
    for spec in RUNTIME_PARAMETERS:
        component = components.get(spec.component_id)
        if component is None or spec.exec_property not in component.exec_properties:
            raise KeyError(f"kubeflow runner: the pipeline has no {spec.component_id}.{spec.exec_property} "
                           f"to expose as the {spec.name!r} parameter; components: {sorted(components)}")
        default = _compact_json(component.exec_properties[spec.exec_property])
        # Set after construction: the components' own type checks expect the proto itself.
        component.exec_properties[spec.exec_property] = tfx.dsl.experimental.RuntimeParameter(
            name=spec.name, ptype=str, default=default, description=spec.description)
        defaults[spec.name] = default
    return defaults


def parameter_values(config: Config, *, train_steps: int | None = None, span: int | None = None,
                     value_thresholds: dict[str, float] | None = None) -> dict[str, str]:
    """Run-time parameter values for a run of the compiled pipeline, from plain numbers.

    train_steps: Trainer steps. span: the span to (re-)ingest, e.g. 20260102 (None: the
    newest). value_thresholds: a head's absolute blessing bound by head name (binary:
    AUC lower bound; regression: MSE upper bound; 0 removes it). Only what is given is
    returned; pass the dict as a KFP run's `arguments` or a Vertex job's `parameter_values`.
    """
    from watchnext.pipeline.cache_keys import evaluator_view

    from tfx.proto import range_config_pb2, trainer_pb2

    values: dict[str, str] = {}
    if train_steps is not None:
        if train_steps < 1:
            raise ValueError(f"train_steps={train_steps} must be >= 1")
        values["train_args"] = _compact_json(trainer_pb2.TrainArgs(num_steps=train_steps))
    if span is not None:
        values["range_config"] = _compact_json(range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)))
    if value_thresholds:
        unknown = set(value_thresholds) - set(config.head_names)
        if unknown:
            raise KeyError(f"no heads named {sorted(unknown)}; heads are {config.head_names}")
        heads = tuple(dataclasses.replace(h, value_threshold=float(value_thresholds[h.name]))
                      if h.name in value_thresholds else h for h in config.heads)
        values["eval_config"] = _compact_json(evaluator_view(config.replace(heads=heads)).to_json())
    return values


def _add_parameter_defaults(spec: Any, defaults: dict[str, str]) -> None:
    """Give the root parameters their defaults and descriptions (TFX leaves them bare)."""
    descriptions = {p.name: p.description for p in RUNTIME_PARAMETERS}
    for name, default in defaults.items():
        parameter = spec.root.input_definitions.parameters[name]
        parameter.default_value.string_value = default
        parameter.is_optional = True
        parameter.description = descriptions[name]


def _warn_if_local(what: str, path: str) -> None:
    if "://" not in path:
        log.warning("%s %r is not a URI (gs://, s3://, ...): each component's container will read or "
                    "write it on its own filesystem unless a volume is mounted there", what, path)


def compile_kubeflow(config: Config, output_path: str, image: str, pipeline_root: str,
                     logs_dir: str) -> str:
    """Compile the pipeline for `config` into a KFP v2 PipelineSpec at `output_path`; return the path.

    `output_path` ending in .yaml/.yml is written as YAML, otherwise as JSON (both are
    the bare PipelineSpec, which KFP and Vertex AI Pipelines accept).
    """
    if config.data.window_spans != 1:
        raise ConfigError(f"config key data.window_spans: {config.data.window_spans}; the Kubeflow v2 "
                          "compiler cannot build the span window (only latest-artifact and latest-blessed-"
                          "model resolvers are supported): set it to 1 for Kubeflow")
    if not logs_dir:
        raise ConfigError("config key data.logs_dir: empty; Kubeflow runs read real logs: pass --logs URI "
                          "or set data.logs_dir (no simulation on a cluster)")
    for what, path in (("logs", logs_dir), ("pipeline root", pipeline_root),
                       ("serving dir", config.serving_dir)):
        _warn_if_local(what, path)

    import watchnext.pipeline.beam as beam
    from watchnext.pipeline.pipeline import create_pipeline

    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx import v1 as tfx

    pipeline = create_pipeline(config, logs_dir=logs_dir, pipeline_root=pipeline_root,
                               beam_pipeline_args=beam.beam_pipeline_args(config, image=image),
                               custom_resolvers=False, trainer_image=image)
    defaults = bind_runtime_parameters(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True))
    job = runner.run(pipeline, write_out=False)
    # The runner returns a Vertex PipelineJob; keep its PipelineSpec, self-contained:
    # parameter defaults and the pipeline root move into the spec itself.
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    _add_parameter_defaults(spec, defaults)
    spec.default_pipeline_root = pipeline_root
    for name in NEVER_CACHED:
        spec.root.dag.tasks[name].caching_options.enable_cache = False
    as_dict = json_format.MessageToDict(spec)

    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as f:
        if output_path.endswith((".yaml", ".yml")):
            yaml.safe_dump(as_dict, f, sort_keys=True)
        else:
            json.dump(as_dict, f, indent=1, sort_keys=True)
    log.info("compiled %s (%d tasks, image %s, parameters %s)", output_path, len(spec.root.dag.tasks),
             image, ", ".join(defaults))
    return output_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `watchnext compile-kubeflow` flags; also makes `main_from_args` the subcommand's function."""
    parser.add_argument("--output", required=True,
                        help="file to write the PipelineSpec to: .json, or .yaml (as KFP compiles)")
    parser.add_argument("--image", default=DEFAULT_IMAGE,
                        help="image every component runs, built from kubeflow/Dockerfile and pushed where "
                             f"the cluster pulls from (default {DEFAULT_IMAGE})")
    parser.add_argument("--pipeline-root",
                        help="URI for the pipeline's artifacts, e.g. gs://bucket/watchnext "
                             "(default: <pipeline.output_dir>/tfx)")
    parser.add_argument("--config", help="YAML file with settings that differ from the defaults")
    parser.add_argument("--logs", help="URI of the impression/event logs; required unless the config sets "
                                       "data.logs_dir (a cluster run cannot simulate its logs)")
    parser.set_defaults(func=main_from_args)


def main_from_args(args: argparse.Namespace) -> int:
    """`watchnext compile-kubeflow`: compile and print the written path."""
    from watchnext.core.config import load_config

    overrides = {"data": {"logs_dir": args.logs}} if args.logs else None
    config = load_config(args.config, overrides)
    pipeline_root = args.pipeline_root or os.path.join(config.pipeline.output_dir, "tfx")
    print(compile_kubeflow(config, args.output, args.image, pipeline_root, config.data.logs_dir))
    return 0
