"""Benchmarks: scripts that measure watchnext and write reports, never timed assertions in tests.

Not part of the installed package (setup.py leaves bench/ out): they import `watchnext` as any
user would. From the repository root, `python -m bench <name> [--quick] [--out reports/]` (or
`make bench BENCH=<name>`) runs one benchmark and writes `<out>/<name>.json` (every figure, the
parameters and the machine: CPU model, cores, load average, versions, date), `<out>/<name>.md`
(Markdown tables) and PNG plots. Each benchmark is one module with `SIZES` (smoke / quick / full)
and `run(context, sizes) -> BenchmarkResult`; `cli.py` lists them.

bench/drills/: the crash drill (SIGKILL a run in a chosen component, check the rerun).
bench/experiments/: one-off measurements behind figures in docs/ (each docstring says how to run it).
"""

from __future__ import annotations

import os

# The folder that holds bench/ (the repository root): child processes need it on PYTHONPATH to
# `import bench`, since bench/ is not installed and a child may run in another working directory.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with the repository root first on PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    return env
