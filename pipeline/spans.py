"""Resolvers that pick daily spans of examples relative to the span this run ingested.

Why not TFX's SpanRangeStrategy fed `example_gen.outputs["examples"]`: in a synchronous
pipeline TFX scopes that channel to the current run, so the Resolver sees only today's
span and a "rolling window of N spans" silently holds one. These strategies start from
today's artifact (what the channel holds) and look up, in ML Metadata, every Examples
artifact the same ExampleGen node wrote in any run (the local runner's `ingest_window`
runs that node on its own for older spans). Spans are chosen relative to today's span,
so re-running an old span (a backfill) sees that day's window, not the newest one.

The Kubeflow V2 compiler accepts only TFX's built-in strategies; there the pipeline
trains on the new span alone and skips the drift check (see pipeline/pipeline.py).
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.spans import VERSION, span_of
from watchnext.pipeline import metadata

from tfx import v1 as tfx
from tfx.types import artifact_utils


def every_run(store: Any, today: Any) -> list[Any]:
    """Every live artifact of `today`'s type written by the node that wrote `today` (TFX artifacts)."""
    live = metadata.same_node_artifacts(store, today.mlmd_artifact)
    if live is None:  # no node recorded as its writer: today's artifact is all there is
        return [today]
    return [artifact_utils.deserialize_artifact(today.artifact_type, a) for a in live]


def _order(artifact: Any) -> tuple[int, int, int]:
    return span_of(artifact), artifact.get_int_custom_property(VERSION), artifact.id


def newest_version_per_span(artifacts: list[Any]) -> dict[int, Any]:
    """{span: its newest version (then newest id)}: a re-ingested span replaces the old one."""
    chosen: dict[int, Any] = {}
    for a in artifacts:
        span = span_of(a)
        if span not in chosen or _order(a) > _order(chosen[span]):
            chosen[span] = a
    return chosen


class _RelativeSpanStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Choose spans from every run's artifacts relative to the newest span in the channel."""

    def choose(self, by_span: dict[int, Any], today: int) -> list[Any]:
        raise NotImplementedError

    def resolve_artifacts(self, store: Any, input_dict: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
        resolved = {}
        for key, artifacts in input_dict.items():
            if not artifacts:
                return None
            today = max(artifacts, key=_order)
            chosen = self.choose(newest_version_per_span(every_run(store, today)), span_of(today))
            if not chosen:
                return None  # the consumer is skipped (the pipeline marks such inputs optional)
            resolved[key] = chosen
        return resolved


class RollingWindowStrategy(_RelativeSpanStrategy):
    """Today's span and the `num_spans - 1` newest spans before it, newest first."""

    def __init__(self, num_spans: int) -> None:
        if num_spans < 1:
            raise ValueError(f"num_spans must be >= 1, got {num_spans}")
        self.num_spans = num_spans

    def choose(self, by_span: dict[int, Any], today: int) -> list[Any]:
        spans = sorted((s for s in by_span if s <= today), reverse=True)[: self.num_spans]
        return [by_span[s] for s in spans]


# The resolver's keys: the examples to describe, and statistics that already describe them.
EXAMPLES_KEY = "examples"
STATISTICS_KEY = "statistics"
# StatisticsGen's execution properties that decide what its statistics hold: reused
# statistics must have been computed with the same ones as today's.
STATISTICS_OPTIONS = ("stats_options_json", "exclude_splits")


class PreviousSpanStrategy(_RelativeSpanStrategy):
    """The newest span before today's ("yesterday"), for the drift check; none on day one.

    Given today's statistics as well (key `statistics`, the main StatisticsGen's output), it
    reuses that node's statistics of yesterday's Examples when they exist: {"examples": [],
    "statistics": [yesterday's statistics]}, so the pipeline's previous-span StatisticsGen is
    skipped; otherwise (a span ingested alone by `ingest_window` or a backfill, or statistics
    taken with other options or without the `baseline_splits`) {"examples": [yesterday's
    Examples], "statistics": []}, and the pipeline describes them anew.
    """

    def __init__(self, baseline_splits: list[str] | None = None) -> None:
        self.baseline_splits = list(baseline_splits or [])

    def choose(self, by_span: dict[int, Any], today: int) -> list[Any]:
        earlier = [s for s in by_span if s < today]
        return [by_span[max(earlier)]] if earlier else []

    def resolve_artifacts(self, store: Any, input_dict: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
        resolved = super().resolve_artifacts(store, {EXAMPLES_KEY: input_dict.get(EXAMPLES_KEY, [])})
        if resolved is None or STATISTICS_KEY not in input_dict:
            return resolved
        reused = self.reusable_statistics(store, input_dict[STATISTICS_KEY], resolved[EXAMPLES_KEY][0])
        if reused is None:
            return {EXAMPLES_KEY: resolved[EXAMPLES_KEY], STATISTICS_KEY: []}
        return {EXAMPLES_KEY: [], STATISTICS_KEY: [reused]}

    def reusable_statistics(self, store: Any, today: list[Any], yesterday: Any) -> Any | None:
        """The newest statistics the node that wrote `today`'s took of `yesterday` (Examples), with
        today's options and every baseline split; None when there are none such."""
        if not today:
            return None
        today_stats = max(today, key=lambda a: a.id)
        options = metadata.writer_execution(store, today_stats.id)
        wanted = [metadata.execution_property(options, k) for k in STATISTICS_OPTIONS]
        for mlmd_artifact, execution in reversed(metadata.node_outputs_from_input(
                store, today_stats.mlmd_artifact, yesterday.id)):
            stats = artifact_utils.deserialize_artifact(today_stats.artifact_type, mlmd_artifact)
            same = [metadata.execution_property(execution, k) for k in STATISTICS_OPTIONS] == wanted
            splits = set(artifact_utils.decode_split_names(stats.split_names))
            if same and set(self.baseline_splits) <= splits:
                return stats
        return None
