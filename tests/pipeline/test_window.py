"""The training window: older spans are ingested once, each by the pipeline's own ExampleGen; the
drift check describes such a span itself, and reuses the statistics a daily run left."""

from __future__ import annotations

from watchnext.core.config import load_config
from watchnext.pipeline import beam, metadata
from watchnext.pipeline.local_runner import RunPaths, ingest_window, spans_on_disk
from watchnext.pipeline.metadata import ingested_spans
from watchnext.pipeline.pipeline import PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID, create_pipeline
from watchnext.simulator.simulate import simulate

import pytest
from ml_metadata.proto import metadata_store_pb2

pytestmark = pytest.mark.slow


def test_older_spans_of_the_window_are_ingested_once(tmp_path):
    logs = str(tmp_path / "logs")
    simulate(logs, days=3, impressions_per_day=600, seed=5, start_date="20260301")
    assert spans_on_disk(logs) == [20260301, 20260302, 20260303]
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")},
                                "data": {"logs_dir": logs, "window_spans": 2}})
    paths = RunPaths(config.pipeline.output_dir)

    # Window of 2: only the older span of the newest two needs ingesting here; the
    # newest one is the main pipeline's ExampleGen's job.
    assert ingest_window(config, logs, paths) == [20260302]
    assert ingested_spans(paths.metadata_path) == {20260302}
    assert ingest_window(config, logs, paths) == []


def test_a_folder_without_spans_is_a_clear_error(tmp_path):
    from watchnext.pipeline.local_runner import run_local

    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")}})
    with pytest.raises(FileNotFoundError, match="no spans in"):
        run_local(config, str(tmp_path))


# The drift check's nodes and what they need: enough of the pipeline to run it in seconds.
DRIFT_NODES = ("LogExampleGen", "StatisticsGen", PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID,
               "DistributionValidator")


def _run_drift_check(config, logs: str, paths: RunPaths, span: int) -> None:
    """The daily job's ingestion, description and drift check of `span`, as `run_local` runs them."""
    from tfx import v1 as tfx

    full = create_pipeline(config, logs_dir=logs, pipeline_root=paths.pipeline_root, span=span)
    nodes = [c for c in full.components if c.id in DRIFT_NODES]
    for node in nodes:  # the nodes left out (SchemaGen, the DataGate, ...) are no one's downstream now
        for down in [d for d in node.downstream_nodes if d.id not in DRIFT_NODES]:
            node.remove_downstream_node(down)
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name, pipeline_root=paths.pipeline_root, components=nodes,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata_path),
        beam_pipeline_args=beam.beam_pipeline_args(config)))


def _baseline_writer(store) -> str:
    """The node that wrote the statistics the newest DistributionValidator compared against."""
    (validation,) = metadata.component_executions(store, "DistributionValidator")[-1:]
    assert validation.last_known_state == metadata_store_pb2.Execution.COMPLETE
    inputs = {e.artifact_id: e.path.steps[0].key for e in store.get_events_by_execution_ids([validation.id])
              if e.type == metadata_store_pb2.Event.INPUT}
    (baseline,) = [a for a, key in inputs.items() if key == "baseline_statistics"]
    writer = metadata.producer(store, baseline)
    (node,) = [c.name for c in store.get_contexts_by_execution(writer) if c.type == metadata.NODE_CONTEXT]
    return node.split(".", 1)[1]


def test_the_drift_check_reuses_yesterdays_statistics_and_describes_an_ingested_span(tmp_path):
    """Issue 15 §3: yesterday's run described yesterday's span, so its statistics are reused; a span
    ingested alone (`ingest_window`, a backfill) has none, and they are computed for the check."""
    logs = str(tmp_path / "logs")
    simulate(logs, days=3, impressions_per_day=600, seed=5, start_date="20260301")
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")},
                                "data": {"logs_dir": logs, "window_spans": 2}})
    paths = RunPaths(config.pipeline.output_dir)
    assert ingest_window(config, logs, paths, newest=20260302) == [20260301]

    # Day 2: day 1 was only ingested, so the previous-span StatisticsGen describes it.
    _run_drift_check(config, logs, paths, 20260302)
    store = metadata.open_metadata(paths.metadata_path)
    assert metadata.execution_history(store)[PREVIOUS_STATISTICS_ID] == ["COMPLETE"]
    assert _baseline_writer(store) == PREVIOUS_STATISTICS_ID

    # Day 3: day 2's run described day 2; those statistics are the baseline, nothing is recomputed.
    _run_drift_check(config, logs, paths, 20260303)
    store = metadata.open_metadata(paths.metadata_path)
    assert metadata.execution_history(store)[PREVIOUS_STATISTICS_ID] == ["COMPLETE", "FAILED"]
    assert _baseline_writer(store) == "StatisticsGen"
