"""Crash drill over every phase: SIGKILL a local run in a component, rerun, check the result.

    .venv/bin/python -m bench.drills.crash_test [--phase Transform Trainer Pusher] [--work DIR]

For each phase: a fresh output folder with a small simulated log, `watchnext run` killed
a moment after the phase starts, then a rerun in-process. Checks after each step: the
serving folder never holds a partial version, the rerun completes and pushes, and the
components that finished before the kill are cache hits. Prints one line per phase.
Takes about 5 minutes per phase on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile

from bench.drills.crash import (
    finished_before_kill,
    kill_during,
    newest_states,
    serving_versions_complete,
)
from watchnext.cli import simulated_logs
from watchnext.core.config import DEFAULT_HEADS, load_config
from watchnext.pipeline.local_runner import RunPaths, run_local

SMALL = {"data": {"simulate_impressions_per_day": 4000},
         "model": {"shared_hidden_units": 16, "num_experts": 2, "expert_units": [8], "tower_units": [4]},
         "training": {"train_steps": 80, "eval_steps": 5, "batch_size": 128},
         # An 80-step model is not expected to clear the production AUC floors; without this
         # nothing is blessed, the Pusher never pushes and the drill proves nothing.
         "heads": [dict(dataclasses.asdict(h), value_threshold=0.0) for h in DEFAULT_HEADS]}


def drill(phase: str, work: str) -> str:
    out = os.path.join(work, phase.lower())
    config = load_config(None, {**SMALL, "pipeline": {"output_dir": out}})
    logs = simulated_logs(config, RunPaths(out).simulated_logs)
    root = os.path.join(config.serving_dir, config.serving.model_name)
    killed = kill_during(config, logs, phase, after_seconds=0.0 if phase == "Pusher" else 3.0)
    partial_free = serving_versions_complete(root)
    finished = [c for c in finished_before_kill(killed.output) if c != phase]
    result = run_local(config, logs)
    states = newest_states(RunPaths(out).metadata_path)
    # What finished before the kill is reused: a cache hit now (a node skipped by design,
    # e.g. yesterday's statistics on day one, stays FAILED).
    not_reused = [c for c in finished if states.get(c) not in ("CACHED", "FAILED")]
    ok = bool(result.pushed_path) and partial_free and serving_versions_complete(root) and not not_reused
    landed = "killed mid-phase" if killed.killed else "phase ended before the kill"
    return (f"{phase}: {'OK' if ok else 'FAILED'} ({landed} after {killed.seconds:.0f}s; "
            f"rerun {result.seconds:.0f}s: {result.message}; no partial version: {partial_free}; "
            f"finished before the kill and reused: {len(finished) - len(not_reused)}/{len(finished)}"
            + (f", not reused: {not_reused}" if not_reused else "") + ")")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", nargs="+", default=["Transform", "Trainer", "Pusher"])
    parser.add_argument("--work", default=None, help="folder for the drills (default: a temp folder)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="watchnext-crash-")
    lines = [drill(phase, work) for phase in args.phase]
    print("\n".join(lines))
    return 0 if all(" OK " in line for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
