"""kubeflow/runner.py: the pipeline compiled to a KFP v2 PipelineSpec, read back as the proto.

Nothing here runs on a cluster; the parts of a run that can run here do: the compiled
spec is loaded by the KFP SDK, and run-time parameter values go through the same
parsing the components' containers apply (the v2 ExampleGen driver runs for real).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import ConfigError, load_config
from watchnext.kubeflow import runner

import pytest
import yaml
from google.protobuf import json_format

IMAGE = "europe-docker.pkg.dev/acme/ml/watchnext:0.1.0"
LOGS = "gs://acme-logs/watchnext"
ROOT = "gs://acme-ml/watchnext/tfx"
PIPELINE = {"name": "watchnext-prod", "beam_preset": "dataflow", "dataflow_project": "acme",
            "dataflow_region": "europe-west4", "dataflow_temp_location": "gs://acme-ml/tmp"}
SETTINGS = {"pipeline": PIPELINE, "data": {"logs_dir": LOGS}, "training": {"train_steps": 321},
            "serving": {"serving_dir": "gs://acme-ml/serving"}}
COMPONENTS = ("LogExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DataGate", "Transform",
              "Trainer", "Evaluator", "Pusher")
# TFX compiles the latest-blessed-model Resolver into two resolver tasks.
RESOLVERS = ("latest_blessed_model-model-blessing-resolver", "latest_blessed_model-model-resolver")
# The Evaluator scores in its own container (components/evaluator): no Beam.
BEAM_COMPONENTS = ("LogExampleGen", "StatisticsGen", "Transform")


@pytest.fixture(scope="module")
def config():
    return load_config(None, SETTINGS)


@pytest.fixture(scope="module")
def compiled(config, tmp_path_factory):
    """(path, PipelineSpec, its JSON dict) of one compilation."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    path = runner.compile_kubeflow(config, str(tmp_path_factory.mktemp("kfp") / "pipeline.json"),
                                   image=IMAGE, pipeline_root=ROOT, logs_dir=LOGS)
    with open(path, encoding="utf-8") as f:
        as_dict = json.load(f)
    # The runner writes the bare PipelineSpec (not a PipelineJob wrapping it).
    spec = json_format.ParseDict(as_dict, pipeline_spec_pb2.PipelineSpec())
    return path, spec, as_dict


def test_every_component_is_a_task_and_the_window_is_left_out(compiled) -> None:
    _, spec, _ = compiled
    assert set(spec.root.dag.tasks) == {*COMPONENTS, *RESOLVERS}
    assert spec.pipeline_info.name == "watchnext-prod"
    assert spec.schema_version == "2.1.0"
    assert spec.default_pipeline_root == ROOT
    # Transform reads the span LogExampleGen just wrote.
    transform = spec.root.dag.tasks["Transform"].inputs.artifacts["examples"].task_output_artifact
    assert (transform.producer_task, transform.output_artifact_key) == ("LogExampleGen", "examples")
    # ... and only after the data gate passed (schema check only: no custom resolver on Kubeflow).
    assert "DataGate" in spec.root.dag.tasks["Transform"].dependent_tasks


def test_every_container_runs_the_image_and_only_the_resolvers_do_not(compiled) -> None:
    _, spec, _ = compiled
    executors = spec.deployment_spec["executors"]
    containers = {label for label, e in executors.items() if "container" in e}
    resolvers = {label for label, e in executors.items() if "resolver" in e}
    assert containers | resolvers == set(executors)
    assert {spec.components[spec.root.dag.tasks[t].component_ref.name].executor_label
            for t in RESOLVERS} == resolvers
    assert len(containers) == len(COMPONENTS)
    assert {executors[label]["container"]["image"] for label in containers} == {IMAGE}


def test_beam_components_get_the_configured_beam_flags(compiled) -> None:
    _, spec, _ = compiled
    executors = spec.deployment_spec["executors"]
    for task in BEAM_COMPONENTS:
        label = spec.components[spec.root.dag.tasks[task].component_ref.name].executor_label
        args = list(executors[label]["container"]["args"])
        assert "--runner=DataflowRunner" in args and f"--sdk_container_image={IMAGE}" in args, (task, args)
        assert "--project=acme" in args and "--region=europe-west4" in args, (task, args)


def test_the_pusher_runs_only_for_a_blessed_model(compiled) -> None:
    _, spec, _ = compiled
    condition = spec.root.dag.tasks["Pusher"].trigger_policy.condition
    assert "_Evaluator.blessing" in condition and "['blessed'] == 1" in condition, condition
    pusher = spec.root.dag.tasks["Pusher"].inputs.parameters["push_destination"]
    assert "gs://acme-ml/serving/watchnext" in pusher.runtime_value.constant.string_value


def test_log_example_gen_is_never_cached_the_rest_is(compiled) -> None:
    _, spec, _ = compiled
    cached = {name: task.caching_options.enable_cache for name, task in spec.root.dag.tasks.items()
              if name in COMPONENTS}
    assert cached == {name: name != "LogExampleGen" for name in COMPONENTS}


def test_runtime_parameters_are_exposed_with_the_local_pipelines_values(config, compiled) -> None:
    from watchnext.core.config import EvaluatorView
    from watchnext.pipeline.cache_keys import evaluator_view

    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.proto import trainer_pb2

    _, spec, _ = compiled
    root = spec.root.input_definitions.parameters
    assert set(root) == {"train_args", "range_config", "eval_config"}
    string = pipeline_spec_pb2.ParameterType.STRING
    assert all(p.parameter_type == string and p.is_optional and p.description for p in root.values())
    defaults = {name: p.default_value.string_value for name, p in root.items()}
    assert defaults["train_args"] == '{"num_steps":321}'  # one line: shown in the KFP run form
    assert json_format.Parse(defaults["train_args"], trainer_pb2.TrainArgs()) == trainer_pb2.TrainArgs(
        num_steps=321)
    assert defaults["range_config"] == ""  # the newest span
    assert EvaluatorView.from_json(defaults["eval_config"]) == evaluator_view(config)
    consumers = {(task, key): p.component_input_parameter
                 for task in ("Trainer", "LogExampleGen", "Evaluator")
                 for key, p in spec.root.dag.tasks[task].inputs.parameters.items()
                 if p.component_input_parameter}
    assert consumers == {("Trainer", "train_args"): "train_args",
                         ("LogExampleGen", "range_config"): "range_config",
                         ("Evaluator", "eval_config"): "eval_config"}


def test_the_kfp_sdk_loads_the_spec_with_its_parameters(compiled) -> None:
    from kfp import components

    path, _, _ = compiled
    loaded = components.load_component_from_file(path)
    assert loaded.name == "watchnext-prod"
    assert set(loaded.component_spec.inputs) == {"train_args", "range_config", "eval_config"}


def test_vertex_ai_builds_a_job_from_the_spec_and_parameter_values(config, compiled) -> None:
    """The Vertex AI SDK's PipelineJob, built offline (no request is sent)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    path, _, _ = compiled
    values = runner.parameter_values(config, train_steps=7, span=20260102)

    def job(parameter_values: dict) -> object:
        return aiplatform.PipelineJob(display_name="watchnext", template_path=path, project="acme",
                                      location="europe-west4", credentials=AnonymousCredentials(),
                                      parameter_values=parameter_values)

    runtime = job(values)._gca_resource.runtime_config
    assert runtime.gcs_output_directory == ROOT
    assert dict(runtime.parameter_values) == values
    with pytest.raises(ValueError, match="train_steps"):
        job({"train_steps": 7})


def test_parameter_values_from_plain_numbers(config) -> None:
    from watchnext.core.config import EvaluatorView
    from watchnext.pipeline.cache_keys import evaluator_view

    from tfx.proto import range_config_pb2, trainer_pb2

    values = runner.parameter_values(config, train_steps=2000, span=20260102, value_thresholds={"click": 0.6})
    assert json_format.Parse(values["train_args"], trainer_pb2.TrainArgs()).num_steps == 2000
    static = json_format.Parse(values["range_config"], range_config_pb2.RangeConfig()).static_range
    assert (static.start_span_number, static.end_span_number) == (20260102, 20260102)
    eval_config = EvaluatorView.from_json(values["eval_config"])
    heads = tuple(dataclasses.replace(h, value_threshold=0.6) if h.name == "click" else h
                  for h in config.heads)
    assert eval_config == evaluator_view(config.replace(heads=heads)) != evaluator_view(config)
    assert eval_config.head("click").value_threshold == 0.6, "no AUC floor of 0.6"
    assert runner.parameter_values(config) == {}
    with pytest.raises(KeyError, match="ctr"):
        runner.parameter_values(config, value_thresholds={"ctr": 0.6})


def test_a_train_args_value_reaches_the_trainer_as_the_container_parses_it(config, compiled) -> None:
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint
    from tfx.proto import trainer_pb2
    from tfx.utils import proto_utils

    _, spec, _ = compiled
    trainer = spec.components[spec.root.dag.tasks["Trainer"].component_ref.name]
    executor_input = pipeline_spec_pb2.ExecutorInput()
    for key, parameter in spec.root.dag.tasks["Trainer"].inputs.parameters.items():
        if parameter.HasField("runtime_value"):
            executor_input.inputs.parameter_values[key].CopyFrom(parameter.runtime_value.constant)
    executor_input.inputs.parameter_values["train_args"].string_value = runner.parameter_values(
        config, train_steps=7)["train_args"]
    exec_properties = entrypoint.parse_execution_properties(
        executor_input.inputs.parameter_values, executor_input.inputs.parameters, trainer.input_definitions)
    # What tfx.components.trainer.fn_args_utils does with it.
    train_args = proto_utils.json_to_proto(exec_properties["train_args"], trainer_pb2.TrainArgs())
    assert train_args.num_steps == 7


@pytest.mark.parametrize("span", [None, 20260101])
def test_a_range_config_value_picks_the_span_in_the_v2_example_gen_driver(compiled, config, tmp_path,
                                                                          span) -> None:
    """Runs TFX's v2 ExampleGen driver (the container's pre-cache step) on a local log folder."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver

    _, spec, _ = compiled
    logs = tmp_path / "logs"
    for day in (20260101, 20260102):
        for log_name in ("impressions", "events"):
            os.makedirs(logs / log_name / f"span={day}")
            (logs / log_name / f"span={day}" / "part-0.jsonl").write_text("{}\n")
    task = spec.root.dag.tasks["LogExampleGen"]
    component = spec.components[task.component_ref.name]
    executor_input = pipeline_spec_pb2.ExecutorInput()
    values = executor_input.inputs.parameter_values
    for key, parameter in task.inputs.parameters.items():
        if parameter.HasField("runtime_value"):
            values[key].CopyFrom(parameter.runtime_value.constant)
    values["input_base"].string_value = str(logs)
    values["range_config"].string_value = runner.parameter_values(config, span=span).get("range_config", "")
    examples = executor_input.outputs.artifacts["examples"].artifacts.add()
    examples.name = "examples"
    examples.uri = str(tmp_path / "examples")
    examples.type.schema_title = "tfx.Examples"
    executor_input.outputs.output_file = str(tmp_path / "out" / "executor_output.json")

    driver.main(argparse.Namespace(
        json_serialized_invocation_args=json_format.MessageToJson(executor_input),
        json_serialized_inputs_spec_args=json_format.MessageToJson(component.input_definitions)))

    with open(tmp_path / "out" / "executor_output.json", encoding="utf-8") as f:
        output = json.load(f)
    assert output["parameterValues"]["span"] == (span or 20260102)
    assert f"span={span or 20260102}" in output["parameterValues"]["input_config"]


def test_the_cli_entry_point_writes_yaml_with_the_same_spec(compiled, tmp_path) -> None:
    import argparse as ap

    _, _, as_dict = compiled
    config_file = tmp_path / "prod.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, "data": {}}))
    parser = ap.ArgumentParser()
    runner.add_arguments(parser)
    out = tmp_path / "pipeline.yaml"
    args = parser.parse_args(["--output", str(out), "--image", IMAGE, "--pipeline-root", ROOT,
                              "--config", str(config_file), "--logs", LOGS])
    assert args.func(args) == 0
    with open(out, encoding="utf-8") as f:
        again = yaml.safe_load(f)
    # Only the code-version hash could differ, and it does not: same sources.
    assert again == as_dict


def test_a_span_window_cannot_be_compiled_and_says_why(tmp_path) -> None:
    config = load_config(None, {"data": {"window_spans": 3}})
    with pytest.raises(ConfigError, match=r"data\.window_spans"):
        runner.compile_kubeflow(config, str(tmp_path / "p.json"), IMAGE, ROOT, LOGS)


def test_kubeflow_needs_real_logs(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"data\.logs_dir"):
        runner.compile_kubeflow(load_config(), str(tmp_path / "p.json"), IMAGE, ROOT, "")


def test_tuning_compiles_a_cached_tuner_whose_best_hyperparameters_feed_the_trainer(tmp_path) -> None:
    from watchnext.core.contract import TUNER_FN

    from kfp.pipeline_spec import pipeline_spec_pb2

    config = load_config(None, {**SETTINGS, "tuning": {"enabled": True, "max_trials": 3, "train_steps": 40}})
    path = runner.compile_kubeflow(config, str(tmp_path / "tuned.json"), image=IMAGE, pipeline_root=ROOT,
                                   logs_dir=LOGS)
    with open(path, encoding="utf-8") as f:
        spec = json_format.ParseDict(json.load(f), pipeline_spec_pb2.PipelineSpec())
    tasks = spec.root.dag.tasks
    assert set(tasks) == {*COMPONENTS, *RESOLVERS, "Tuner"}
    assert tasks["Tuner"].caching_options.enable_cache
    hyperparameters = tasks["Trainer"].inputs.artifacts["hyperparameters"].task_output_artifact
    assert (hyperparameters.producer_task, hyperparameters.output_artifact_key) == ("Tuner",
                                                                                    "best_hyperparameters")
    examples = tasks["Tuner"].inputs.artifacts["examples"].task_output_artifact
    assert (examples.producer_task, examples.output_artifact_key) == ("Transform", "transformed_examples")
    tuner = {key: p.runtime_value.constant for key, p in tasks["Tuner"].inputs.parameters.items()}
    assert tuner["tuner_fn"].string_value == TUNER_FN
    assert json.loads(tuner["train_args"].string_value) == {"num_steps": 40}
    label = spec.components[tasks["Tuner"].component_ref.name].executor_label
    assert spec.deployment_spec["executors"][label]["container"]["image"] == IMAGE


# ---------------------------------------------------------------------------
# The Trainer as a Vertex AI job of several replicas (training.vertex_workers).

VERTEX = {"vertex_project": "acme", "vertex_region": "europe-west4", "vertex_machine_type": "n1-highmem-8"}


def _trainer(spec) -> tuple[dict, list[str]]:
    """(the compiled Trainer's custom_config, its container args)."""
    task = spec.root.dag.tasks["Trainer"]
    custom_config = json.loads(task.inputs.parameters["custom_config"].runtime_value.constant.string_value)
    label = spec.components[task.component_ref.name].executor_label
    return custom_config, list(spec.deployment_spec["executors"][label]["container"]["args"])


def test_by_default_the_trainer_trains_in_its_own_container(compiled) -> None:
    _, spec, _ = compiled
    custom_config, args = _trainer(spec)
    assert "ai_platform_training_args" not in custom_config
    assert "tfx.components.trainer.executor.GenericExecutor" in args


def test_vertex_workers_compile_into_a_chief_pool_and_a_worker_pool(tmp_path) -> None:
    from watchnext.core.config import Config
    from watchnext.core.contract import CONFIG_KEY

    from kfp.pipeline_spec import pipeline_spec_pb2

    training = {**SETTINGS["training"], **VERTEX, "vertex_workers": 3,
                "distribution": "multi_worker_mirrored"}
    vertex = load_config(None, {**SETTINGS, "training": training})
    path = runner.compile_kubeflow(vertex, str(tmp_path / "pipeline.json"), image=IMAGE, pipeline_root=ROOT,
                                   logs_dir=LOGS)
    with open(path, encoding="utf-8") as f:
        spec = json_format.ParseDict(json.load(f), pipeline_spec_pb2.PipelineSpec())
    custom_config, args = _trainer(spec)
    # The extension's executor submits the job; run_fn still reads the same watchnext config.
    assert "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor" in args
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == "europe-west4"
    job = custom_config["ai_platform_training_args"]
    assert job["project"] == "acme"
    pools = job["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]  # the chief, then the workers
    assert {p["machine_spec"]["machine_type"] for p in pools} == {"n1-highmem-8"}
    assert {p["container_spec"]["image_uri"] for p in pools} == {IMAGE}
    assert Config.from_json(custom_config[CONFIG_KEY]).training.vertex_workers == 3


@pytest.mark.parametrize(("training", "key"), [
    ({**VERTEX, "vertex_workers": 2}, "training.distribution"),  # default strategy: each replica alone
    ({**VERTEX, "vertex_workers": 1, "vertex_project": ""}, "training.vertex_project"),
    ({"vertex_workers": -1}, "training.vertex_workers"),
])
def test_a_vertex_training_config_that_cannot_work_names_its_key(training: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, {"training": training})
