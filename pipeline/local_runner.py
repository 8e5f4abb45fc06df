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

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.atomic_pusher import version_dirs
from watchnext.components.log_example_gen.layout import no_spans_message, spans_on_disk
from watchnext.core.config import Config
from watchnext.pipeline import beam, metadata
from watchnext.pipeline.output_lock import output_lock
from watchnext.pipeline.pipeline import PREVIOUS_SPAN_ID, PREVIOUS_STATISTICS_ID, RUN_FN, create_pipeline
from watchnext.pipeline.tfx_logging import STARTED, ComponentEvent, ProgressCallback, tfx_run_logging

from tfx import v1 as tfx

log = logging.getLogger("watchnext")


@dataclass(frozen=True)
class RunPaths:
    """Where a local run keeps its pieces."""

    output_dir: str

    @property
    def pipeline_root(self) -> str:
        """Absolute: ML Metadata records every artifact's URI under it, and a relative one would
        name nothing once a later command (`watchnext report --output DIR`) runs elsewhere."""
        root = self.output_dir if "://" in self.output_dir else os.path.abspath(self.output_dir)
        return os.path.join(root, "tfx")

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


def ingest_window(config: Config, logs_dir: str, paths: RunPaths, newest: int | None = None) -> list[int]:
    """Ingest the older spans of the training window that ML Metadata has not seen yet.

    ExampleGen takes one span per run (the newest, in the main pipeline), so on a fresh
    output folder the window's older spans are ingested first, each by the same
    ExampleGen node in a pipeline of its own, for the span_window Resolver to find.
    """
    from watchnext.components.log_example_gen import make_log_example_gen

    spans = [s for s in spans_on_disk(logs_dir, config.data.span_format) if newest is None or s <= newest]
    window = spans[-config.data.window_spans:]
    missing = [s for s in window[:-1] if s not in metadata.ingested_spans(paths.metadata_path)]
    for i, span in enumerate(missing, 1):
        log.info("ingesting older span %d of the training window (%d/%d)", span, i, len(missing))
        example_gen = make_log_example_gen(
            logs_dir, eval_percent=config.data.eval_percent,
            max_rejected_fraction=config.data.max_rejected_fraction, span=span,
            max_position=config.features.max_position, log_schema=config.log_schema,
            span_format=config.data.span_format)
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name=config.pipeline.name, pipeline_root=paths.pipeline_root,
            components=[example_gen], enable_cache=config.pipeline.enable_cache,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                paths.metadata_path),
            beam_pipeline_args=beam.beam_pipeline_args(config)))
    return missing


def run_local(config: Config, logs_dir: str, run_fn: str = RUN_FN, span: int | None = None,
              on_progress: ProgressCallback | None = None) -> RunResult:
    """Run the pipeline once over `logs_dir` (its newest span, or `span`); report the push.

    `on_progress`, if given, is called as each component of the main pipeline starts and
    finishes (a `ComponentEvent`: name, count, wall time, seconds), e.g. to time components.
    """
    with output_lock(config.pipeline.output_dir):
        return _run_locked(config, logs_dir, run_fn, span, on_progress)


def backfill(config: Config, logs_dir: str, first: int, last: int) -> list[tuple[int, RunResult]]:
    """Run the daily job for every span on disk in [first, last], oldest first.

    Each span is one pipeline run, exactly as the daily job would have run it that day
    (window, warm start from the model blessed the day before, blessing, push). Progress
    is kept in `<output>/backfill.json`, so a backfill that failed part-way resumes at the
    first unfinished span when run again; TFX's cache makes any repeated step cheap.
    """
    spans = [s for s in spans_on_disk(logs_dir, config.data.span_format) if first <= s <= last]
    if not spans:
        raise FileNotFoundError(f"no spans between {first} and {last} in {logs_dir} "
                                f"(data.span_format {config.data.span_format!r})")
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


def _run_locked(config: Config, logs_dir: str, run_fn: str, span: int | None,
                on_progress: ProgressCallback | None) -> RunResult:
    paths = RunPaths(config.pipeline.output_dir)
    push_root = os.path.join(config.serving_dir, config.serving.model_name)
    before = set(version_dirs(push_root))
    # A table (data.source table) has no spans: `logs_dir` is its file or glob.
    if config.data.source == "logs" and not spans_on_disk(logs_dir, config.data.span_format):
        raise FileNotFoundError(no_spans_message(logs_dir, config.data.span_format))
    if config.data.window_spans > 1:
        ingest_window(config, logs_dir, paths, newest=span)
    pipeline = create_pipeline(
        config, logs_dir=logs_dir, pipeline_root=paths.pipeline_root,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata_path),
        run_fn=run_fn, span=span)
    seconds, component_seconds = run_with_progress(pipeline, on_progress)
    new = sorted(set(version_dirs(push_root)) - before)
    if new:
        path = os.path.join(push_root, str(new[-1]))
        return RunResult(path, True, f"pushed {path}", seconds, component_seconds)
    verdict = metadata.latest_blessing(paths.metadata_path)
    why = verdict.reason
    if verdict.blessed:
        why = "the model was blessed but is already served (cached run): " + why
    return RunResult(None, verdict.blessed, f"nothing pushed: {why}", seconds, component_seconds)


# The drift-check nodes skipped by design, and why: on an output folder's first run there is
# no earlier span; on a day whose yesterday the daily run described, its statistics are reused.
FIRST_SPAN_NODES = {
    PREVIOUS_SPAN_ID: "no earlier span in this output folder, so no drift check against one",
    PREVIOUS_STATISTICS_ID: "nothing to describe (the previous span's statistics from its own run "
                            "are reused, or this output folder has no earlier span)",
}


def log_progress(event: ComponentEvent) -> None:
    """The run's own progress lines: `[k/n] <id> running` and `[k/n] <id> done in <s>s`
    (the crash drill, bench/drills/crash.py, reads them from a run's output)."""
    if event.kind == STARTED:
        log.info("[%d/%d] %s running", event.finished + 1, event.total, event.component)
    else:
        log.info("[%d/%d] %s done in %.1fs", event.finished, event.total, event.component, event.seconds)


def run_with_progress(pipeline: tfx.dsl.Pipeline, on_progress: ProgressCallback | None = None
                      ) -> tuple[float, dict[str, float]]:
    """Run `pipeline` on LocalDagRunner with one progress line per component, and `on_progress`
    called with every component's start and finish (pipeline/tfx_logging.py).

    Returns (wall seconds, {component id: seconds}). The caller holds the output lock.
    """
    callbacks = [log_progress] + ([on_progress] if on_progress else [])
    start = time.time()
    with tfx_run_logging(len(pipeline.components), callbacks, FIRST_SPAN_NODES) as seconds:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    return time.time() - start, dict(seconds)
