"""Crash drills: kill a local run in a chosen component, then check what a rerun finds.

Used by tests/pipeline/test_crash_recovery.py and bench/drills/crash_test.py. A run is a
`watchnext run` subprocess; it is killed with SIGKILL (no cleanup code runs) a few
seconds after it announces the chosen component.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from watchnext.core.config import Config
from watchnext.pipeline.metadata import execution_states

import yaml


@dataclass
class KillResult:
    """Whether the kill landed while `phase` was running, and what the run printed."""

    killed: bool
    seconds: float
    output: str


def kill_during(config: Config, logs_dir: str, phase: str, after_seconds: float = 2.0,
                timeout: float = 900.0) -> KillResult:
    """Start `watchnext run`, SIGKILL it `after_seconds` after "<phase> running" appears."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(json.loads(config.to_json()), f)
        config_path = f.name
    cmd = [sys.executable, "-m", "watchnext", "run", "--config", config_path, "--logs", logs_dir]
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    killed = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if f"] {phase} running" in line:
                time.sleep(after_seconds)
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                break
            if time.time() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait()
        os.unlink(config_path)
    return KillResult(killed, time.time() - start, "".join(lines))


def finished_before_kill(output: str) -> list[str]:
    """Ids of the components the killed run reported done (its `[k/n] <id> done in` lines)."""
    return re.findall(r"\] (\S+) done in ", output)


def newest_states(metadata_path: str) -> dict[str, str]:
    """{component id: state of its newest execution}: what a rerun did with each component."""
    return {component: states[-1] for component, states in execution_states(metadata_path).items()}


def serving_versions_complete(model_root: str) -> bool:
    """Every numeric version folder holds a whole SavedModel (saved_model.pb and variables)."""
    from watchnext.components.atomic_pusher import version_dirs

    for version in version_dirs(model_root):
        path = os.path.join(model_root, str(version))
        if not (os.path.exists(os.path.join(path, "saved_model.pb"))
                and os.path.isdir(os.path.join(path, "variables"))):
            return False
    return True
