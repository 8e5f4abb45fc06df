"""Ingestion speed: LogExampleGen's whole executor (read, validate, join, write tf.Examples) on one
simulated day, in impressions per second, optionally against another checkout of watchnext.

    python -m bench.ingest_speed --impressions 100000 300000 --rounds 2 \
        --baseline /tmp/base          # /tmp/base/watchnext is an older checkout (e.g. git archive)

Every (size, round) runs each variant in a fresh child process, interleaved (A, B, A, B, …),
so that machine load affects both alike; only `Executor().Do` is timed (not imports or the
simulation); CPU seconds are reported beside wall seconds, as the machine may be shared.
Peak RSS is the child's high-water mark (getrusage) before and after `Do`: what the executor
itself adds on top of the imports is the difference.
The simulated logs are cached under --work-dir. Prints one JSON line per run and a table
of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import bench

SPAN = 20260101


def simulate_day(work_dir: str, impressions: int) -> str:
    """The logs folder of one simulated day of `impressions` (simulated once, then reused)."""
    logs = os.path.join(work_dir, f"logs-{impressions}")
    done = os.path.join(logs, "_done")
    if not os.path.exists(done):
        from watchnext.simulator.simulate import simulate

        simulate(logs, impressions_per_day=impressions, days=1, seed=3, shards=4)
        open(done, "w").close()
    return logs


def child(logs: str, out: str) -> dict[str, Any]:
    """Run the executor once on `logs`: its wall and CPU seconds (all threads of this process:
    DirectRunner runs in it) and what it read and wrote."""
    import watchnext  # noqa: F401
    from watchnext.components.example_gen.artifacts import RejectedRecords
    from watchnext.components.log_example_gen import make_log_example_gen
    from watchnext.components.log_example_gen.executor import Executor

    from google.protobuf import message
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    component = make_log_example_gen(logs, eval_percent=20, max_rejected_fraction=0.01)
    props = {k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
             for k, v in component.exec_properties.items() if v is not None}
    props = component.driver_class(None).resolve_exec_properties(props, None, None)
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out, "examples")
    rejected = RejectedRecords()
    rejected.uri = os.path.join(out, "rejected")
    rss_before = peak_rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    Executor().Do({}, {"examples": [examples], "rejected": [rejected]}, props)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    with open(os.path.join(rejected.uri, "counts.json")) as f:
        counts = json.load(f)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "impressions": counts["impressions"]["read"],
            "events": counts["events"]["read"], "examples": counts["examples"]["total"],
            "peak_rss_mb_before": rss_before, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports ru_maxrss in KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(name: str, package_parent: str | None, logs: str) -> dict[str, Any]:
    """One child run of the executor, importing watchnext from `package_parent` (None: this one)."""
    env = bench.child_env(dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2"))
    if package_parent:
        env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as out:
        # Run from the out folder, so that an editable install is not shadowed by the cwd.
        proc = subprocess.run([sys.executable, "-c", (
            "import json, sys; from bench import ingest_speed as b; "
            "print('RESULT ' + json.dumps(b.child(sys.argv[1], sys.argv[2])))"), logs, out],
            env=env, cwd=out, capture_output=True, text=True, check=False)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return {"variant": name, **json.loads(lines[-1][len("RESULT "):])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impressions", type=int, nargs="+", default=[100_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", help="a folder holding an older `watchnext` package to compare with")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "watchnext-ingest-speed"))
    args = parser.parse_args(argv)
    variants = [("current", None)] + ([("baseline", args.baseline)] if args.baseline else [])
    from bench.report import machine_info

    print(json.dumps({"machine": machine_info(), "arguments": vars(args)}), flush=True)
    results = []
    for n in args.impressions:
        logs = simulate_day(args.work_dir, n)
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, parent in order:
                result = {"impressions_per_day": n, "round": r, **run_variant(name, parent, logs)}
                result["impressions_per_s"] = result["impressions"] / result["seconds"]
                print(json.dumps(result), flush=True)
                results.append(result)
    print("\n| impressions | variant | runs | median wall s | impressions/s (wall) | median CPU s | "
          "impressions/CPU-s | peak RSS MB (before Do) |\n|---|---|---|---|---|---|---|---|")
    for n in args.impressions:
        for name, _ in variants:
            runs = [x for x in results if x["impressions_per_day"] == n and x["variant"] == name]
            wall = statistics.median(x["seconds"] for x in runs)
            cpu = statistics.median(x["cpu_seconds"] for x in runs)
            peak = max(x["peak_rss_mb"] for x in runs)
            before = max(x["peak_rss_mb_before"] for x in runs)
            print(f"| {n:,} | {name} | {len(runs)} | {wall:.1f} | {n / wall:,.0f} | {cpu:.1f} | "
                  f"{n / cpu:,.0f} | {peak:,.0f} ({before:,.0f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
