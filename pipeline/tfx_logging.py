"""The one place watchnext reaches into TFX's logging: component progress and the drift nodes' skips.

LocalDagRunner has no progress hook. It announces each component with absl's
`logging.info("Component %s is running.")` / `("Component %s is finished.")`, and other
libraries reset absl's level mid-run, so those lines cannot be caught by a logging handler.
`tfx_run_logging` therefore stands a proxy in for the `logging` name of TFX's
`local_dag_runner` module while a run lasts: it forwards every call to absl and turns the two
announcements into `ComponentEvent`s for a public callback (`ProgressCallback`). It also
installs `FirstSpanSkip` on the absl logger. Both are undone when the block ends, also on error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STARTED = "started"
FINISHED = "finished"
# What tfx/orchestration/local/local_dag_runner.py logs around each component (TFX 1.16).
RUNNING_MESSAGE = "Component %s is running."
FINISHED_MESSAGE = "Component %s is finished."


@dataclass(frozen=True)
class ComponentEvent:
    """A component of a local run started or finished.

    `finished` counts the components finished so far (this one included when it is the one
    finishing), out of `total` in the pipeline; `time` is the wall clock (`time.time()`);
    `seconds` is the finished component's time since it started (driver, executor and
    publisher), None for a start.
    """

    kind: str
    component: str
    finished: int
    total: int
    time: float
    seconds: float | None = None


ProgressCallback = Callable[[ComponentEvent], None]


class _Announcements:
    """Stands in for `local_dag_runner.logging`: forwards everything to absl, reports the two
    component announcements to the callbacks, and keeps {component: seconds}."""

    def __init__(self, total: int, absl_logging: Any, callbacks: list[ProgressCallback]) -> None:
        self.total = total
        self.absl = absl_logging
        self.callbacks = callbacks
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.absl, name)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        event = None
        now = time.time()
        if msg == RUNNING_MESSAGE and args:
            self.started[args[0]] = now
            event = ComponentEvent(STARTED, args[0], len(self.seconds), self.total, now)
        elif msg == FINISHED_MESSAGE and args:
            name = args[0]
            self.seconds[name] = now - self.started.get(name, now)
            event = ComponentEvent(FINISHED, name, len(self.seconds), self.total, now, self.seconds[name])
        if event is not None:
            for callback in self.callbacks:
                callback(event)
        self.absl.info(msg, *args, **kwargs)


class FirstSpanSkip(logging.Filter):
    """Turn TFX's ERROR + traceback for a drift-check node skipped by design into one INFO line.

    On an output folder's first span the previous-span Resolver finds nothing, and on a day
    whose yesterday was described by yesterday's run the previous-span StatisticsGen gets no
    examples: TFX reports every node it then skips with `logging.exception`, which reads like
    a crash. `nodes` maps each such node to why it is skipped; only their input-resolution
    messages are rewritten, any other error stays.
    """

    TFX_MESSAGE = "[%s] Input resolution error: %s"

    def __init__(self, nodes: Mapping[str, str]) -> None:
        super().__init__()
        self.nodes = dict(nodes)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == self.TFX_MESSAGE and args and args[0] in self.nodes:
            record.msg = "[%s] skipped: %s"
            record.args = (args[0], self.nodes[args[0]])
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None
        return True


@contextlib.contextmanager
def tfx_run_logging(total: int, callbacks: list[ProgressCallback],
                    first_span_nodes: Mapping[str, str] | None = None) -> Iterator[dict[str, float]]:
    """While the block runs a LocalDagRunner pipeline of `total` components, each component's
    start and finish calls every callback (in order), and input-resolution errors of
    `first_span_nodes` ({node: why it is skipped}) read as one INFO line. Yields {component:
    seconds}, filled as they finish."""
    from tfx.orchestration.local import local_dag_runner

    announcements = _Announcements(total, local_dag_runner.logging, callbacks)
    local_dag_runner.logging = announcements
    skip = FirstSpanSkip(first_span_nodes or {})
    logging.getLogger("absl").addFilter(skip)
    try:
        yield announcements.seconds
    finally:
        local_dag_runner.logging = announcements.absl
        logging.getLogger("absl").removeFilter(skip)
