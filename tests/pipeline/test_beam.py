"""Beam presets: each preset's flags, read back through Beam's own option parser; one real
multi-process run."""

from __future__ import annotations

import json
import os

from watchnext.core.config import BEAM_PRESETS, ConfigError, from_dict
from watchnext.pipeline.beam import PRESETS, beam_pipeline_args, check_beam_args

import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
    WorkerOptions,
)

IMAGE = "registry.example/watchnext:1"
DATAFLOW = {"beam_preset": "dataflow", "dataflow_project": "p", "dataflow_region": "europe-west4",
            "dataflow_temp_location": "gs://b/tmp", "beam_workers": 8}


def args_for(image: str = "", **pipeline: object) -> list[str]:
    return beam_pipeline_args(from_dict({"pipeline": pipeline}), image=image)


def options(args: list[str], view: type) -> object:
    return PipelineOptions(args).view_as(view)


def test_every_configurable_preset_has_flags() -> None:
    assert tuple(PRESETS) == BEAM_PRESETS


def test_direct_is_the_in_memory_default() -> None:
    args = args_for()
    assert args == ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    direct = options(args, DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("in_memory", 1)


def test_direct_multiprocess_runs_beam_workers_processes() -> None:
    direct = options(args_for(beam_preset="direct-multiprocess", beam_workers=3), DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 3)


def test_dataflow_reads_project_region_temp_location_and_runs_the_image() -> None:
    args = args_for(IMAGE, **DATAFLOW)
    assert options(args, StandardOptions).runner == "DataflowRunner"
    gcp = options(args, GoogleCloudOptions)
    assert (gcp.project, gcp.region, gcp.temp_location) == ("p", "europe-west4", "gs://b/tmp")
    worker = options(args, WorkerOptions)
    assert (worker.max_num_workers, worker.sdk_container_image) == (8, IMAGE)


def test_dataflow_without_an_image_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="--sdk_container_image"):
        args_for(**DATAFLOW)
    args = args_for(**DATAFLOW, beam_args=[f"--sdk_container_image={IMAGE}"])
    assert options(args, WorkerOptions).sdk_container_image == IMAGE


@pytest.mark.parametrize(("missing", "key"), [
    ("dataflow_project", "pipeline.dataflow_project"),
    ("dataflow_temp_location", "pipeline.dataflow_temp_location"),
])
def test_dataflow_config_errors_name_the_key(missing: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        from_dict({"pipeline": {**DATAFLOW, missing: ""}})


@pytest.mark.parametrize("preset", ["flink", "spark"])
def test_portable_presets_use_the_job_server_and_a_worker_pool(preset: str) -> None:
    args = args_for(beam_preset=preset, beam_job_endpoint="flink-jobserver:8099")
    assert options(args, StandardOptions).runner == "PortableRunner"
    portable = options(args, PortableOptions)
    assert (portable.job_endpoint, portable.environment_type, portable.environment_config) == (
        "flink-jobserver:8099", "EXTERNAL", "localhost:50000")
    # Beam's default (60 s) is also the job's state-stream deadline: a longer job would fail.
    assert portable.job_server_timeout == 86400
    if preset == "flink":
        assert options(args, FlinkRunnerOptions).parallelism == 2


def test_portable_docker_workers_run_the_pipeline_image() -> None:
    spark = {"beam_preset": "spark", "beam_job_endpoint": "spark:8099", "beam_environment_type": "DOCKER"}
    assert options(args_for(IMAGE, **spark), PortableOptions).environment_config == IMAGE
    with pytest.raises(ConfigError, match=r"pipeline\.beam_environment_config"):
        args_for(**spark)


def test_portable_presets_need_a_job_endpoint() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.beam_job_endpoint"):
        from_dict({"pipeline": {"beam_preset": "flink"}})


def test_an_unknown_preset_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.beam_preset"):
        from_dict({"pipeline": {"beam_preset": "dask"}})


def test_extra_beam_args_come_last_and_win() -> None:
    extra = ["--direct_num_workers=4", "--save_main_session"]
    args = args_for(beam_preset="direct-multiprocess", beam_args=extra)
    assert args[-2:] == extra
    assert options(args, DirectOptions).direct_num_workers == 4


# A complete, valid pipeline section per preset: what a user would submit.
SUBMISSIONS = {
    "direct": {},
    "direct-multiprocess": {"beam_preset": "direct-multiprocess", "beam_workers": 2},
    "dataflow": DATAFLOW,
    "flink": {"beam_preset": "flink", "beam_job_endpoint": "flink-jobserver:8099", "beam_workers": 4},
    "spark": {"beam_preset": "spark", "beam_job_endpoint": "spark-jobserver:8099",
              "beam_environment_type": "DOCKER", "beam_environment_config": IMAGE},
}


@pytest.mark.parametrize("preset", BEAM_PRESETS)
def test_each_presets_full_argument_list_passes_beams_own_parsing(preset: str) -> None:
    """Every flag is a Beam option and every value parses, so a typo fails here, not on a cluster."""
    args = args_for(image=IMAGE, **SUBMISSIONS[preset])
    parsed = check_beam_args(args)
    runner = {"dataflow": "DataflowRunner", "flink": "PortableRunner", "spark": "PortableRunner"}
    assert parsed["runner"] == runner.get(preset)
    if preset in ("flink", "spark"):
        assert parsed["job_endpoint"] == SUBMISSIONS[preset]["beam_job_endpoint"]


@pytest.mark.parametrize("extra, named", [
    (["--enviroment_config=localhost:5"], "enviroment_config"),  # misspelt: Beam would drop it
    (["--direct_running_mode=multi_processingx"], "multi_processingx"),
    (["--runner=DataflowRunnr"], "DataflowRunnr"),
])
def test_a_bad_flag_in_beam_args_fails_at_config_time_naming_it(extra: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        args_for(beam_preset="direct", beam_args=extra)


@pytest.mark.slow
def test_direct_multiprocess_computes_feature_statistics_in_two_worker_processes(tmp_path) -> None:
    """StatisticsGen-like work (per-feature count, mean, min, max) on 2 worker processes."""
    import apache_beam as beam

    # cloudpickle ships this test's lambdas by value: the workers cannot import a test module.
    args = [*args_for(beam_preset="direct-multiprocess", beam_workers=2), "--pickle_library=cloudpickle"]
    rows = [{"video_duration": float(i), "user_activity": float(i % 7)} for i in range(2000)]
    out = str(tmp_path / "stats")
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        # (feature, (value, pid of the worker that saw it))
        values = (p | beam.Create(rows, reshuffle=True)
                  | beam.FlatMap(lambda row: [(k, (v, __import__("os").getpid())) for k, v in row.items()]))
        stats = (values
                 | beam.MapTuple(lambda k, v: (k, v[0]))
                 | beam.GroupByKey()
                 | beam.MapTuple(lambda k, xs: (k, list(xs)))
                 | beam.MapTuple(lambda k, xs: {"stat": [k, [len(xs), sum(xs) / len(xs), min(xs), max(xs)]]}))
        pids = (values
                | beam.Map(lambda kv: kv[1][1]) | beam.Distinct() | beam.combiners.ToList()
                | beam.Map(lambda ps: {"pids": sorted(ps)}))
        ((stats, pids) | beam.Flatten() | beam.Map(json.dumps)
         | beam.io.WriteToText(out, shard_name_template=""))
    with open(out, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    stats_by_feature = {d["stat"][0]: d["stat"][1] for d in lines if "stat" in d}
    assert stats_by_feature["video_duration"] == [2000, 999.5, 0.0, 1999.0]
    assert stats_by_feature["user_activity"][0] == 2000
    assert stats_by_feature["user_activity"][2:] == [0.0, 6.0]
    (worker_pids,) = [d["pids"] for d in lines if "pids" in d]
    # The work ran outside this process, in at most the two workers asked for.
    assert os.getpid() not in worker_pids and 1 <= len(worker_pids) <= 2, worker_pids
