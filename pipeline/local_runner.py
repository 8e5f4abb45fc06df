"""Run the pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

Everything a run writes lives under `config.pipeline.output_dir`:
`tfx/` (artifacts), `metadata.sqlite` (ML Metadata), `serving/<model>/<version>/`
(pushed models) and, when no logs are given, `simulated_logs/`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.atomic_pusher import version_dirs
from watchnext.components.log_example_gen.layout import spans_on_disk
from watchnext.core.config import Config
from watchnext.core.contract import RUN_FN
from watchnext.pipeline import beam
from watchnext.pipeline.output_lock import output_lock
from watchnext.pipeline.pipeline import PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID, create_pipeline

from tfx import v1 as tfx

log = logging.getLogger("watchnext")


@dataclass(frozen=True)
class RunPaths:
    """Where a local run keeps its pieces."""

    output_dir: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "tfx")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def simulated_logs(self) -> str:
        return os.path.join(self.output_dir, "simulated_logs")


@dataclass
class RunResult:
    """What a run did: the pushed version's path, or why nothing was pushed."""

    pushed_path: str | None
    blessed: bool | None
    message: str
    seconds: float
    component_seconds: dict[str, float] = dataclasses.field(default_factory=dict)


class _ComponentProgress:
    """Turns the orchestrator's per-component announcements into one progress line each.

    LocalDagRunner has no progress hook: it announces each component with absl's
    `logging.info`, and other libraries reset absl's level mid-run, so those lines
    cannot be caught by a logging handler. This proxy stands in for the `logging`
    name of the runner's module while a run lasts, and forwards every call to absl.
    """

    def __init__(self, total: int, absl_logging: Any) -> None:
        self.total = total
        self.absl = absl_logging
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.absl, name)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg == "Component %s is running." and args:
            self.started[args[0]] = time.time()
            log.info("[%d/%d] %s running", len(self.seconds) + 1, self.total, args[0])
        elif msg == "Component %s is finished." and args:
            name = args[0]
            self.seconds[name] = time.time() - self.started.get(name, time.time())
            log.info("[%d/%d] %s done in %.1fs", len(self.seconds), self.total, name, self.seconds[name])
        self.absl.info(msg, *args, **kwargs)


def open_metadata(metadata_path: str) -> Any:
    """The run's SQLite ML Metadata store."""
    from ml_metadata.metadata_store import metadata_store

    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))


def component_executions(store: Any, component: str) -> list[Any]:
    """Every execution of a TFX component class (`"Trainer"`), oldest first.

    ML Metadata names execution types by the component's full class path
    (`tfx.components.trainer.component.Trainer`), so the type is found by its last part.
    """
    names = [t.name for t in store.get_execution_types() if t.name.split(".")[-1] == component]
    if len(names) != 1:
        raise LookupError(f"{len(names)} execution types named {component!r} in ML Metadata: {names}")
    return sorted(store.get_executions_by_type(names[0]), key=lambda e: e.id)


def ingested_spans(metadata_path: str) -> set[int]:
    """Spans already turned into Examples by this pipeline's ExampleGen (from ML Metadata)."""
    if not os.path.exists(metadata_path):
        return set()
    store = open_metadata(metadata_path)
    return {a.custom_properties["span"].int_value for a in store.get_artifacts_by_type("Examples")
            if "span" in a.custom_properties}


def ingest_window(config: Config, logs_dir: str, paths: RunPaths, newest: int | None = None) -> list[int]:
    """Ingest the older spans of the training window that ML Metadata has not seen yet.

    ExampleGen takes one span per run (the newest, in the main pipeline), so on a fresh
    output folder the window's older spans are ingested first, each by the same
    ExampleGen node in a pipeline of its own, for the span_window Resolver to find.
    """
    from watchnext.components.log_example_gen import make_log_example_gen

    spans = [s for s in spans_on_disk(logs_dir) if newest is None or s <= newest]
    window = spans[-config.data.window_spans:]
    missing = [s for s in window[:-1] if s not in ingested_spans(paths.metadata_path)]
    for i, span in enumerate(missing, 1):
        log.info("ingesting older span %d of the training window (%d/%d)", span, i, len(missing))
        example_gen = make_log_example_gen(
            logs_dir, eval_percent=config.data.eval_percent,
            max_rejected_fraction=config.data.max_rejected_fraction, span=span,
            max_position=config.features.max_position)
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name=config.pipeline.name, pipeline_root=paths.pipeline_root,
            components=[example_gen], enable_cache=config.pipeline.enable_cache,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                paths.metadata_path),
            beam_pipeline_args=beam.beam_pipeline_args(config)))
    return missing


def run_local(config: Config, logs_dir: str, run_fn: str = RUN_FN, span: int | None = None) -> RunResult:
    """Run the pipeline once over `logs_dir` (its newest span, or `span`); report the push."""
    with output_lock(config.pipeline.output_dir):
        return _run_locked(config, logs_dir, run_fn, span)


def backfill(config: Config, logs_dir: str, first: int, last: int) -> list[tuple[int, RunResult]]:
    """Run the daily job for every span on disk in [first, last], oldest first.

    Each span is one pipeline run, exactly as the daily job would have run it that day
    (window, warm start from the model blessed the day before, blessing, push). Progress
    is kept in `<output>/backfill.json`, so a backfill that failed part-way resumes at the
    first unfinished span when run again; TFX's cache makes any repeated step cheap.
    """
    spans = [s for s in spans_on_disk(logs_dir) if first <= s <= last]
    if not spans:
        raise FileNotFoundError(f"no spans between {first} and {last} in {logs_dir}")
    state_path = os.path.join(config.pipeline.output_dir, "backfill.json")
    done: list[int] = []
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            done = json.load(f).get("done", [])
    results = []
    for i, span in enumerate(spans, 1):
        if span in done:
            log.info("backfill %d/%d: span %d already done", i, len(spans), span)
            continue
        log.info("backfill %d/%d: span %d", i, len(spans), span)
        result = run_local(config, logs_dir, span=span)
        results.append((span, result))
        done.append(span)
        os.makedirs(config.pipeline.output_dir, exist_ok=True)
        with open(state_path, "w", encoding="utf-8") as f:
            json.dump({"logs_dir": logs_dir, "done": sorted(done)}, f)
        log.info("backfill span %d: %s", span, result.message)
    return results


def _run_locked(config: Config, logs_dir: str, run_fn: str, span: int | None) -> RunResult:
    paths = RunPaths(config.pipeline.output_dir)
    push_root = os.path.join(config.serving_dir, config.serving.model_name)
    before = set(version_dirs(push_root))
    # A table (data.source table) has no spans: `logs_dir` is its file or glob.
    if config.data.source == "logs" and not spans_on_disk(logs_dir):
        raise FileNotFoundError(f"no spans in {logs_dir}: expected folders like "
                                f"{os.path.join(logs_dir, 'impressions', 'span=20260101')}")
    if config.data.window_spans > 1:
        ingest_window(config, logs_dir, paths, newest=span)
    pipeline = create_pipeline(
        config, logs_dir=logs_dir, pipeline_root=paths.pipeline_root,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata_path),
        run_fn=run_fn, span=span)
    seconds, component_seconds = run_with_progress(pipeline)
    new = sorted(set(version_dirs(push_root)) - before)
    if new:
        path = os.path.join(push_root, str(new[-1]))
        return RunResult(path, True, f"pushed {path}", seconds, component_seconds)
    blessed, why = latest_blessing(paths.metadata_path)
    if blessed:
        why = "the model was blessed but is already served (cached run): " + why
    return RunResult(None, blessed, f"nothing pushed: {why}", seconds, component_seconds)


class _FirstSpanSkip(logging.Filter):
    """Turn TFX's ERROR + traceback for "no yesterday to compare with" into one INFO line.

    On an output folder's first span the previous-span Resolver finds nothing, by design, and
    TFX reports every node it then skips with `logging.exception`, which reads like a crash.
    Only those two nodes' input-resolution messages are rewritten; any other error stays.
    """

    NODES = (PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID)
    TFX_MESSAGE = "[%s] Input resolution error: %s"

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == self.TFX_MESSAGE and args and args[0] in self.NODES:
            record.msg = "[%s] skipped: no earlier span in this output folder, so no drift check against one"
            record.args = (args[0],)
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None
        return True


def run_with_progress(pipeline: tfx.dsl.Pipeline) -> tuple[float, dict[str, float]]:
    """Run `pipeline` on LocalDagRunner with one progress line per component.

    Returns (wall seconds, {component id: seconds}). The caller holds the output lock.
    """
    from tfx.orchestration.local import local_dag_runner

    progress = _ComponentProgress(len(pipeline.components), local_dag_runner.logging)
    local_dag_runner.logging = progress
    first_span_skip = _FirstSpanSkip()
    logging.getLogger("absl").addFilter(first_span_skip)
    start = time.time()
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        local_dag_runner.logging = progress.absl
        logging.getLogger("absl").removeFilter(first_span_skip)
    return time.time() - start, progress.seconds


def latest_ingestion(metadata_path: str) -> str | None:
    """What the newest ExampleGen run read, wrote and rejected, and where the rejects are."""
    from watchnext.components.log_example_gen import counts
    from watchnext.components.log_example_gen.artifacts import RejectedRecords
    from watchnext.components.table_example_gen import counts as table_counts

    store = open_metadata(metadata_path)
    artifacts = store.get_artifacts_by_type(RejectedRecords.TYPE_NAME)
    if not artifacts:
        return None
    newest = max(artifacts, key=lambda a: a.id)
    path = os.path.join(newest.uri, "counts.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    describe = table_counts.describe if summary.get("source") == table_counts.SOURCE else counts.describe
    return f"ingestion: {describe(summary)}; rejected records: {newest.uri}"


def latest_utilization(metadata_path: str) -> dict[str, Any] | None:
    """The expert-utilization summary of the newest Trainer run (models/expert_utilization.py)."""
    from watchnext.models import expert_utilization

    run = latest_model_run(metadata_path)
    return expert_utilization.read(run) if run else None


def latest_evaluation(metadata_path: str) -> dict[str, Any] | None:
    """The newest Evaluator run's metrics.json (None: no evaluation, or one another evaluator wrote)."""
    from watchnext.components.evaluator import read_metrics

    evaluations = open_metadata(metadata_path).get_artifacts_by_type("ModelEvaluation")
    if not evaluations:
        return None
    try:
        return read_metrics(max(evaluations, key=lambda a: a.id).uri)
    except (OSError, ValueError):
        return None


def latest_model_run(metadata_path: str) -> str | None:
    """The newest Trainer run's folder (TensorBoard logs, expert utilization)."""
    runs = open_metadata(metadata_path).get_artifacts_by_type("ModelRun")
    return max(runs, key=lambda a: a.id).uri if runs else None


def latest_blessing(metadata_path: str) -> tuple[bool | None, str]:
    """The newest Evaluator verdict in ML Metadata, with the failed checks if any."""
    from watchnext.components.evaluator import read_metrics

    store = open_metadata(metadata_path)
    blessings = store.get_artifacts_by_type("ModelBlessing")
    if not blessings:
        return None, "the Evaluator did not run"
    newest = max(blessings, key=lambda a: a.id)
    blessed = newest.custom_properties["blessed"].int_value == 1
    evaluations = store.get_artifacts_by_type("ModelEvaluation")
    if blessed or not evaluations:
        return blessed, "blessed" if blessed else "not blessed"
    evaluation = max(evaluations, key=lambda a: a.id)
    try:
        failures = read_metrics(evaluation.uri)["failures"]
    except (OSError, KeyError, ValueError):  # an evaluation written by another Evaluator
        failures = []
    detail = "; ".join(failures[:5]) or "see " + evaluation.uri
    return False, f"not blessed by the Evaluator ({detail})"
