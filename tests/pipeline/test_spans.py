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
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    contexts = store.get_contexts_by_type("node")
    context_id = next((c.id for c in contexts if c.name == node), None)
    if context_id is None:
        [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type, name=node)])
    store.put_attributions_and_associations(
        [metadata_store_pb2.Attribution(context_id=context_id, artifact_id=examples.id)],
        [metadata_store_pb2.Association(context_id=context_id, execution_id=execution_id)])
    return examples


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
