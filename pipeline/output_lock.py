"""One run at a time per output folder (light: the CLI imports it before TensorFlow)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from watchnext.core.errors import UsageError


class OutputInUse(UsageError, RuntimeError):
    """Another watchnext run holds the output folder."""


@contextlib.contextmanager
def output_lock(output_dir: str) -> Iterator[None]:
    """Hold an exclusive lock on the output folder for the length of a run.

    Two runs on one folder would share one SQLite ML Metadata store and one serving
    folder; the second one is refused at once instead. The lock is an flock, so the
    kernel releases it when the holder dies, even by SIGKILL: no stale lock to clean.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, ".watchnext.lock")
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise OutputInUse(f"another watchnext run ({holder}) is using {output_dir}; wait for it "
                              "to finish or use another --output") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
