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


class PreviousSpanStrategy(_RelativeSpanStrategy):
    """The newest span before today's ("yesterday"), for the drift check; none on day one."""

    def choose(self, by_span: dict[int, Any], today: int) -> list[Any]:
        earlier = [s for s in by_span if s < today]
        return [by_span[max(earlier)]] if earlier else []
