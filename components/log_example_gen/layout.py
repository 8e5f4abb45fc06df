"""Where a log folder keeps its daily spans (light: no TFX, so the CLI checks paths at once)."""

from __future__ import annotations

import os

from watchnext.core.log_schema import IMPRESSIONS_LOG


def spans_on_disk(logs_dir: str) -> list[int]:
    """Daily spans with an impressions folder (`impressions/span=YYYYMMDD`), oldest first."""
    root = os.path.join(logs_dir, IMPRESSIONS_LOG)
    names = os.listdir(root) if os.path.isdir(root) else []
    return sorted(int(n.split("=", 1)[1]) for n in names if n.startswith("span=") and n[5:].isdigit())
