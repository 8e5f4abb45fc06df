"""Span resolvers: the window and "yesterday" come from every run of the ExampleGen node."""

from __future__ import annotations

from watchnext.core.spans import span_of
from watchnext.pipeline.spans import PreviousSpanStrategy, RollingWindowStrategy, every_run

import pytest
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts


def _ingest(store, node: str, span: int, version: int = 0) -> standard_artifacts.Examples:
    """Record one ExampleGen-like execution of `node` that wrote Examples of `span`, as TFX does."""
    examples = standard_artifacts.Examples()
    examples.uri = f"/tmp/{node}/{span}/{version}"
    # ExampleGen's way: custom properties (the Examples' own `span` property stays 0).
    examples.set_int_custom_property("span", span)
    examples.set_int_custom_property("version", version)
    examples.mlmd_artifact.state = metadata_store_pb2.Artifact.LIVE
    [type_id] = [store.put_artifact_type(examples.artifact_type)]
    examples.type_id = type_id
    [examples.id] = store.put_artifacts([examples.mlmd_artifact])
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="LogExampleGen"))
    [execution_id] = store.put_executions([metadata_store_pb2.Execution(type_id=execution_type)])
    store.put_events([metadata_store_pb2.Event(artifact_id=examples.id, execution_id=execution_id,
                                               type=metadata_store_pb2.Event.OUTPUT)])
    _attach_to_node(store, node, examples.id, execution_id)
    return examples


def _attach_to_node(store, node: str, artifact_id: int, execution_id: int) -> None:
    """Put the execution and its output artifact in `node`'s context (made on first use), as TFX does."""
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    context_id = next((c.id for c in store.get_contexts_by_type("node") if c.name == node), None)
    if context_id is None:
        [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type, name=node)])
    store.put_attributions_and_associations(
        [metadata_store_pb2.Attribution(context_id=context_id, artifact_id=artifact_id)],
        [metadata_store_pb2.Association(context_id=context_id, execution_id=execution_id)])


def _spans(resolved) -> list[tuple[int, int]]:
    return [(span_of(a), a.get_int_custom_property("version")) for a in resolved["examples"]]


def test_window_and_previous_span_come_from_every_run(store):
    _ingest(store, "watchnext.LogExampleGen", 20260101)
    _ingest(store, "watchnext.LogExampleGen", 20260102)
    _ingest(store, "watchnext.LogExampleGen", 20260102, version=1)  # re-ingested: newest version wins
    _ingest(store, "watchnext.OtherExampleGen", 20260104)  # another node's output is never chosen
    today = _ingest(store, "watchnext.LogExampleGen", 20260103)
    assert {span_of(a) for a in every_run(store, today)} == {20260101, 20260102, 20260103}

    window = RollingWindowStrategy(num_spans=2).resolve_artifacts(store, {"examples": [today]})
    assert _spans(window) == [(20260103, 0), (20260102, 1)]
    assert _spans(RollingWindowStrategy(num_spans=9).resolve_artifacts(store, {"examples": [today]})) == [
        (20260103, 0), (20260102, 1), (20260101, 0)]
    assert _spans(PreviousSpanStrategy().resolve_artifacts(store, {"examples": [today]})) == [(20260102, 1)]


def test_spans_are_relative_to_the_span_this_run_ingested(store):
    first = _ingest(store, "watchnext.LogExampleGen", 20260101)
    second = _ingest(store, "watchnext.LogExampleGen", 20260102)
    _ingest(store, "watchnext.LogExampleGen", 20260103)
    # Re-running day 2 (a backfill) sees day 2's window, not the newest span's.
    assert _spans(RollingWindowStrategy(2).resolve_artifacts(store, {"examples": [second]})) == [
        (20260102, 0), (20260101, 0)]
    assert _spans(PreviousSpanStrategy().resolve_artifacts(store, {"examples": [second]})) == [(20260101, 0)]
    # Day one has no yesterday: nothing resolved, so the drift check is skipped.
    assert PreviousSpanStrategy().resolve_artifacts(store, {"examples": [first]}) is None
    assert _spans(RollingWindowStrategy(3).resolve_artifacts(store, {"examples": [first]})) == [(20260101, 0)]


def test_a_window_needs_at_least_one_span():
    with pytest.raises(ValueError, match="num_spans"):
        RollingWindowStrategy(0)


def _describe(store, node: str, examples, splits=("train", "eval"), options: str | None = None):
    """Record one StatisticsGen-like execution of `node` that read `examples` and wrote statistics."""
    from tfx.types import artifact_utils

    stats = standard_artifacts.ExampleStatistics()
    stats.uri = f"/tmp/{node}/{examples.id}/{options}"
    stats.split_names = artifact_utils.encode_split_names(list(splits))
    stats.mlmd_artifact.state = metadata_store_pb2.Artifact.LIVE
    stats.type_id = store.put_artifact_type(stats.artifact_type)
    [stats.id] = store.put_artifacts([stats.mlmd_artifact])
    execution = metadata_store_pb2.Execution(type_id=store.put_execution_type(
        metadata_store_pb2.ExecutionType(name="StatisticsGen")))
    if options is not None:
        execution.custom_properties["stats_options_json"].string_value = options
    [execution_id] = store.put_executions([execution])
    event = metadata_store_pb2.Event
    store.put_events([event(artifact_id=examples.id, execution_id=execution_id, type=event.INPUT),
                      event(artifact_id=stats.id, execution_id=execution_id, type=event.OUTPUT)])
    _attach_to_node(store, node, stats.id, execution_id)
    return stats


def test_yesterdays_statistics_are_reused_when_its_run_took_them_the_same_way(store):
    """Issue 15 §3: the drift check's baseline is the statistics yesterday's run took, not new ones."""
    strategy = PreviousSpanStrategy(baseline_splits=["train"])
    first = _ingest(store, "watchnext.LogExampleGen", 20260101)
    second = _ingest(store, "watchnext.LogExampleGen", 20260102)
    today = _ingest(store, "watchnext.LogExampleGen", 20260103)
    today_stats = _describe(store, "watchnext.StatisticsGen", today)

    def resolve(examples, stats):
        resolved = strategy.resolve_artifacts(store, {"examples": [examples], "statistics": [stats]})
        return [a.id for a in resolved["examples"]], [a.id for a in resolved["statistics"]]

    # Yesterday was only ingested (ingest_window, a backfill): its examples are described anew.
    assert resolve(today, today_stats) == ([second.id], [])
    # Statistics of it by another node, with other options or without the compared split do not count.
    _describe(store, "watchnext.previous_span_statistics", second, splits=("train",))
    _describe(store, "watchnext.StatisticsGen", second, options='{"sample_rate": 0.1}')
    _describe(store, "watchnext.StatisticsGen", second, splits=("eval",))
    assert resolve(today, today_stats) == ([second.id], [])
    # Yesterday's run described it: those statistics (the newest such) are the baseline.
    _describe(store, "watchnext.StatisticsGen", second)
    reused = _describe(store, "watchnext.StatisticsGen", second)
    assert resolve(today, today_stats) == ([], [reused.id])
    # Relative to the span being run (a backfill of day 2 compares with day 1, not described).
    second_stats = _describe(store, "watchnext.StatisticsGen", second)
    assert resolve(second, second_stats) == ([first.id], [])
    # Day one: nothing to compare with, so the drift check is skipped.
    assert strategy.resolve_artifacts(store, {"examples": [first], "statistics": [today_stats]}) is None
