"""Where a log folder keeps its spans (light: no TFX, so the CLI checks paths at once)."""

from __future__ import annotations

import os

from watchnext.core.log_schema import IMPRESSIONS_LOG
from watchnext.core.span_format import (
    DEFAULT_SPAN_FORMAT,
    SPAN_PREFIX,
    describe,
    example_folder,
    parse_span_folder,
)


def spans_on_disk(logs_dir: str, span_format: str = DEFAULT_SPAN_FORMAT) -> list[int]:
    """Spans with an impressions folder named in `span_format` (`impressions/span=YYYYMMDD`), oldest first."""
    spans = (parse_span_folder(name, span_format) for name in _span_folders(logs_dir))
    return sorted(s for s in spans if s is not None)


def other_span_folders(logs_dir: str, span_format: str = DEFAULT_SPAN_FORMAT) -> list[str]:
    """Impressions folders named `span=...` that are not spans of `span_format`, e.g. hourly
    `span=2026010113` under the daily default: named in errors, since TFX would fail on
    them with "Glob pattern does not match regex pattern" or skip them silently."""
    return sorted(name for name in _span_folders(logs_dir) if parse_span_folder(name, span_format) is None)


def no_spans_message(logs_dir: str, span_format: str = DEFAULT_SPAN_FORMAT) -> str:
    """Why `logs_dir` has no span to ingest, with the layout expected and what is there instead."""
    message = (f"no spans in {logs_dir}: expected folders like "
               f"{os.path.join(logs_dir, IMPRESSIONS_LOG, example_folder(span_format))} "
               f"(data.span_format {span_format!r}: {describe(span_format)})")
    others = other_span_folders(logs_dir, span_format)
    if others:
        message += f"; found {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}, another format"
    return message


def _span_folders(logs_dir: str) -> list[str]:
    root = os.path.join(logs_dir, IMPRESSIONS_LOG)
    names = os.listdir(root) if os.path.isdir(root) else []
    return [n for n in names if n.startswith(SPAN_PREFIX)]
