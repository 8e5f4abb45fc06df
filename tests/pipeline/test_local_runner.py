"""pipeline/local_runner.py: what a local run prints about the nodes it skips by design."""

from __future__ import annotations

import logging

from watchnext.pipeline import local_runner
from watchnext.pipeline.pipeline import PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID

import pytest
from absl import logging as absl_logging


@pytest.fixture
def absl_records(caplog, monkeypatch):
    """Records the `absl` logger emits while the runner's first-span filter is installed.

    The CLIs stop absl's lines propagating to the root logger (where caplog listens), and
    a CLI test may have run earlier in this worker process, so propagation is switched
    back on for the test's duration.
    """
    absl_logger = logging.getLogger("absl")
    monkeypatch.setattr(absl_logger, "propagate", True)
    monkeypatch.setattr(absl_logger, "disabled", False)
    skip = local_runner._FirstSpanSkip()
    absl_logger.addFilter(skip)
    caplog.set_level(logging.INFO, logger="absl")
    try:
        yield caplog
    finally:
        absl_logger.removeFilter(skip)


def _tfx_input_resolution_error(node: str) -> None:
    """What TFX's launcher and resolver handler log when a node's inputs do not resolve."""
    try:
        raise RuntimeError(f"Error while resolving inputs for {node}: min_count has not met")
    except RuntimeError as e:
        absl_logging.exception("[%s] Input resolution error: %s", node, e)


@pytest.mark.parametrize("node", [PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID])
def test_first_span_skip_of_the_drift_nodes_is_one_info_line(absl_records, node):
    _tfx_input_resolution_error(node)
    (record,) = absl_records.records
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert record.getMessage() == (f"[{node}] skipped: no earlier span in this output folder, "
                                   "so no drift check against one")


def test_any_other_nodes_input_error_stays_an_error_with_its_traceback(absl_records):
    _tfx_input_resolution_error("Trainer")
    (record,) = absl_records.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert "Error while resolving inputs for Trainer" in record.getMessage()


def test_component_executions_finds_a_component_by_its_class_name(store):
    from ml_metadata.proto import metadata_store_pb2

    def put(type_name: str) -> int:
        type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name=type_name))
        [execution_id] = store.put_executions([metadata_store_pb2.Execution(type_id=type_id)])
        return execution_id

    first = put("tfx.components.trainer.component.Trainer")
    put("tfx.components.evaluator.component.Evaluator")
    second = put("tfx.components.trainer.component.Trainer")
    put("watchnext.components.other.NotATrainer")  # only the exact class name counts
    assert [e.id for e in local_runner.component_executions(store, "Trainer")] == [first, second]
    with pytest.raises(LookupError, match="'Pusher'"):
        local_runner.component_executions(store, "Pusher")
