"""pipeline/tfx_logging.py: component progress from LocalDagRunner's announcements, and what a local
run prints about the nodes it skips by design."""

from __future__ import annotations

import logging

from watchnext.pipeline import tfx_logging
from watchnext.pipeline.local_runner import FIRST_SPAN_NODES
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
    skip = tfx_logging.FirstSpanSkip(FIRST_SPAN_NODES)
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


@pytest.mark.parametrize(("node", "why"), [
    (PREVIOUS_SPAN_ID, "no earlier span in this output folder, so no drift check against one"),
    (PREVIOUS_STATISTICS_ID, "nothing to describe (the previous span's statistics from its own run are "
                             "reused, or this output folder has no earlier span)")])
def test_skips_of_the_drift_nodes_are_one_info_line(absl_records, node, why):
    _tfx_input_resolution_error(node)
    (record,) = absl_records.records
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert record.getMessage() == f"[{node}] skipped: {why}"


def test_any_other_nodes_input_error_stays_an_error_with_its_traceback(absl_records):
    _tfx_input_resolution_error("Trainer")
    (record,) = absl_records.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert "Error while resolving inputs for Trainer" in record.getMessage()


class _Absl:
    """Stands in for absl's logging module: records what the proxy forwards."""

    def __init__(self):
        self.calls = []

    def info(self, msg, *args, **kwargs):
        self.calls.append(("info", msg % args))

    def warning(self, msg, *args, **kwargs):
        self.calls.append(("warning", msg % args))


def test_run_logging_turns_the_runners_announcements_into_events_and_restores_its_logging(monkeypatch):
    from tfx.orchestration.local import local_dag_runner

    absl = _Absl()
    monkeypatch.setattr(local_dag_runner, "logging", absl)
    events = []
    with tfx_logging.tfx_run_logging(2, [events.append], FIRST_SPAN_NODES) as seconds:
        proxy = local_dag_runner.logging
        assert proxy is not absl
        # The two lines LocalDagRunner logs around each component (tfx/orchestration/local).
        for name in ("LogExampleGen", "Trainer"):
            proxy.info(tfx_logging.RUNNING_MESSAGE, name)
            proxy.info("an unrelated line about %s", name)
            proxy.info(tfx_logging.FINISHED_MESSAGE, name)
        proxy.warning("still forwarded")
    assert local_dag_runner.logging is absl  # restored
    assert [(e.kind, e.component, e.finished, e.total) for e in events] == [
        ("started", "LogExampleGen", 0, 2), ("finished", "LogExampleGen", 1, 2),
        ("started", "Trainer", 1, 2), ("finished", "Trainer", 2, 2)]
    assert events[0].seconds is None and events[1].seconds == pytest.approx(events[1].time - events[0].time)
    assert events[2].time >= events[1].time
    assert set(seconds) == {"LogExampleGen", "Trainer"} and seconds["Trainer"] == events[3].seconds
    # Every call still reaches absl, the announcements included.
    assert ("info", "Component Trainer is finished.") in absl.calls
    assert ("info", "an unrelated line about Trainer") in absl.calls
    assert ("warning", "still forwarded") in absl.calls


def test_run_logging_restores_the_runners_logging_when_the_run_fails(monkeypatch):
    from tfx.orchestration.local import local_dag_runner

    absl = _Absl()
    monkeypatch.setattr(local_dag_runner, "logging", absl)
    filters = list(logging.getLogger("absl").filters)
    with pytest.raises(RuntimeError, match="boom"), tfx_logging.tfx_run_logging(1, [], FIRST_SPAN_NODES):
        raise RuntimeError("boom")
    assert local_dag_runner.logging is absl
    assert logging.getLogger("absl").filters == filters


def test_the_default_progress_lines_are_the_ones_the_crash_drill_reads(caplog):
    from bench.drills.crash import finished_before_kill
    from watchnext.pipeline.local_runner import log_progress

    caplog.set_level(logging.INFO, logger="watchnext")
    log_progress(tfx_logging.ComponentEvent("started", "Transform", 2, 9, 100.0))
    log_progress(tfx_logging.ComponentEvent("finished", "Transform", 3, 9, 103.5, 3.5))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["[3/9] Transform running", "[3/9] Transform done in 3.5s"]
    assert finished_before_kill("\n".join(lines)) == ["Transform"]
