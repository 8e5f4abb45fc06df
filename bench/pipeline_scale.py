"""The whole local pipeline at growing log sizes: wall time and peak memory per component, rows/s.

For each size, one simulated day of `n` impressions is written by the real simulator
(timed: simulator rows/s; in a process of its own, whose memory is handed back before the
pipeline starts) and the real local pipeline (`local_runner.run_local`, what
`watchnext run` calls: LogExampleGen → … → Evaluator → AtomicPusher on Beam's
DirectRunner) runs over it into a fresh output folder.

Each size runs in a child process of its own (`python -m bench.pipeline_scale
<spec.json>`), so one size's memory (TensorFlow graphs, Beam caches, a Python heap that is
not handed back to the OS) cannot inflate the next size's peak, and so the sampler sees
exactly the pipeline's process tree. The child records when the simulator and every
component started and ended (the runner's public `on_progress` callback, which times each
component between the orchestrator's "is running" and "is finished" announcements: driver,
executor and publisher) and what LogExampleGen read (its counts.json). The parent
samples the resident set size of the child and all its descendants every
`sample_seconds` on a background thread (psutil) and attributes each sample to the phase
running at that time; a phase's peak is the largest sample inside it. A size that runs past
`max_seconds_per_size` or grows past `max_rss_gb` is stopped, and reported as far as it got.
`beam_preset` runs every size on another Beam preset (`--beam-preset direct-multiprocess`),
written to a report named after it.

Training runs a fixed number of steps at every size (`steps` > 0), so the Trainer's time
measures the fixed cost of building, training and exporting the model, not data growth; or,
with `steps` 0 (`--steps 0`), the pipeline's own budget (training.epochs with early stopping,
the default batch), so the model trains on all the data and its time grows with it. Each
size reports the model it trained: steps, epochs, best step, why training stopped, and the
Evaluator's overall AUC (MSE) per head. The growth exponents of the other components
(log-log slope of seconds vs impressions between sizes) say how the data-bound stages scale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import json
import logging
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import bench
import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, jsonable
from watchnext.core.config import DEFAULT_HEADS

import numpy as np

NAME = "pipeline_scale"
MB = 1024.0 * 1024.0
GB = 1024.0 * MB
# Phases of a child's life outside the pipeline's components.
STARTUP = "startup (interpreter, imports)"
SIMULATE = "simulate"
ORCHESTRATION = "orchestration (between components)"
FINISH = "after the run (ingestion counts, exit)"
# The component id TFX gives LogExampleGen (its class name; tests check they agree).
EXAMPLE_GEN = "LogExampleGen"
# Components whose time stays under this at every size are left out of the time plot (resolvers).
PLOT_MIN_SECONDS = 1.0
# The RSS timeline kept in the JSON per size (a 1M run yields ~10k samples at 0.2 s).
TIMELINE_POINTS = 1500

log = logging.getLogger("watchnext.benchmarks")


@dataclass(frozen=True)
class Sizes:
    # Impressions of the one simulated day, one pipeline run each (smallest first).
    impression_sizes: tuple[int, ...]
    # training.train_steps, the same at every size so the Trainer's time stays comparable; 0: the
    # config's epochs with early stopping (and batch_size 0: the config's batch).
    steps: int
    batch_size: int = 256
    eval_steps: int = 50
    sim_seed: int = 7
    sample_seconds: float = 0.2
    # A size still running after this long is stopped and reported as far as it got (None: no limit).
    max_seconds_per_size: float | None = None
    # A size whose process tree grows past this many GB of RSS is stopped the same way, before it
    # can push the machine into swap or the OOM killer (None: no limit).
    max_rss_gb: float | None = None
    # pipeline.beam_preset of every run: `direct` (one process) or `direct-multiprocess` (its
    # beam_workers local processes); a report of another preset is named after it.
    beam_preset: str = "direct"


SIZES = {
    "smoke": Sizes(impression_sizes=(1000,), steps=5, batch_size=64, eval_steps=2),
    "quick": Sizes(impression_sizes=(10000, 50000), steps=300),
    # The published sizes, trained as the pipeline trains (epochs + early stopping, its batch).
    "full": Sizes(impression_sizes=(100_000, 1_000_000, 10_000_000), steps=0, batch_size=0,
                  max_seconds_per_size=7200.0, max_rss_gb=16.0),
}


def report_name(sizes: Sizes) -> str:
    """The report's file name: pipeline_scale for the default preset, else suffixed with the preset,
    so a multiprocess run sits beside the one-process report instead of replacing it."""
    return NAME if sizes.beam_preset == "direct" else f"{NAME}_{sizes.beam_preset.replace('-', '_')}"


def limit_reason(elapsed: float, rss_bytes: int | None, sizes: Sizes) -> str | None:
    """Why a size running for `elapsed` s with `rss_bytes` of RSS must be stopped (None: it may go on)."""
    if sizes.max_seconds_per_size is not None and elapsed > sizes.max_seconds_per_size:
        return f"stopped after the limit of {sizes.max_seconds_per_size:.0f} s per size"
    if sizes.max_rss_gb is not None and rss_bytes is not None and rss_bytes > sizes.max_rss_gb * GB:
        return (f"stopped when its processes' RSS reached {rss_bytes / GB:.1f} GB, over the limit of "
                f"{sizes.max_rss_gb:g} GB per size")
    return None


# ---------------------------------------------------------------------------
# Measurement helpers (pure or self-contained, unit-tested in tests/bench).


def tree_rss(pid: int) -> tuple[int, int]:
    """(summed RSS in bytes, number of processes) of `pid` and all its descendants.

    Pages shared between processes are counted once per process, as RSS is; processes
    that exit while being read are skipped.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total, alive = 0, 0
    for p in processes:
        try:
            total += p.memory_info().rss
            alive += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total, alive


class RssSampler:
    """Samples `tree_rss(pid)` every `interval` seconds on a daemon thread until stopped.

    `samples` holds (wall-clock time, RSS bytes, processes); wall-clock time because the
    phases it is matched with are stamped by another process.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"rss-sampler-{pid}", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss, processes = tree_rss(self.pid)
            if processes:
                self.samples.append((time.time(), rss, processes))
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def phase_peaks(samples: Sequence[tuple[float, int, int]], phases: Sequence[tuple[str, float, float]]
                ) -> dict[str, dict[str, Any]]:
    """Per phase (name, start, end): the largest RSS sample with start <= t < end, and how many fell in it.

    A phase shorter than the sampling interval may hold no sample; its peak is then None
    rather than a neighbour's value.
    """
    result: dict[str, dict[str, Any]] = {}
    for name, start, end in phases:
        inside = [rss for t, rss, _ in samples if start <= t < end]
        result[name] = {"peak_rss_bytes": max(inside) if inside else None, "samples": len(inside)}
    return result


def growth_exponents(sizes: Sequence[float], values: Sequence[float | None]) -> dict[str, Any]:
    """How `values` grow with `sizes`: log-log slopes between neighbouring sizes and a least-squares fit.

    A slope of 1 is linear growth, 0 a fixed cost. Pairs with a missing or non-positive
    value have no slope (None); the fit uses the points that have one.
    """
    if len(sizes) != len(values):
        raise ValueError(f"growth_exponents: {len(sizes)} sizes but {len(values)} values")
    pairs = []
    for (s0, v0), (s1, v1) in itertools.pairwise(zip(sizes, values, strict=True)):
        ok = all(v is not None and v > 0 for v in (v0, v1)) and s1 != s0
        pairs.append(math.log(v1 / v0) / math.log(s1 / s0) if ok else None)
    points = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True)
              if v is not None and v > 0]
    fit = None
    if len(points) >= 2 and len({x for x, _ in points}) >= 2:
        xs, ys = np.array(points).T
        fit = float(np.polyfit(xs, ys, 1)[0])
    return {"pairwise": pairs, "fit": fit}


def marginal_rates(rows: Sequence[float], seconds: Sequence[float | None]) -> list[float | None]:
    """(rows_i − rows_{i−1}) / (seconds_i − seconds_{i−1}) per size (None for the first, or without a gain).

    A stage's plain rows/s at a small size is mostly its fixed start-up cost; the rate
    between two sizes is what each extra row costs.
    """
    rates: list[float | None] = [None]
    for i in range(1, len(rows)):
        s0, s1 = seconds[i - 1], seconds[i]
        ok = s0 is not None and s1 is not None and s1 > s0 and rows[i] > rows[i - 1]
        rates.append((rows[i] - rows[i - 1]) / (s1 - s0) if ok else None)
    return rates


def downsample(points: Sequence[tuple[float, float]], limit: int = TIMELINE_POINTS
               ) -> list[tuple[float, float]]:
    """At most about `limit` (t, value) points: the largest value of each run of consecutive points.

    Keeps the stored timeline small without losing a peak (a plain stride could skip it).
    """
    if len(points) <= limit:
        return list(points)
    step = math.ceil(len(points) / limit)
    return [max(points[i:i + step], key=lambda p: p[1]) for i in range(0, len(points), step)]


def directory_bytes(path: str) -> int:
    """Bytes of every file under `path` (the artifacts a run left on disk)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                continue
    return total


# ---------------------------------------------------------------------------
# The child: simulate one day, run the pipeline, write the timeline.


def child_config(output_dir: str, impressions: int, sizes: Sizes) -> Any:
    """The default config with this size's log, the fixed training steps and no absolute AUC floors.

    The floors are dropped so that the Pusher runs at every size (a first run on a tiny
    log may not clear them): its time is then measured everywhere. The model is the default.
    """
    from watchnext.core.config import load_config

    training: dict[str, Any] = {"train_steps": sizes.steps, "eval_steps": sizes.eval_steps}
    if sizes.batch_size:
        training["batch_size"] = sizes.batch_size
    return load_config(None, {
        "pipeline": {"output_dir": output_dir, "beam_preset": sizes.beam_preset},
        "data": {"simulate_impressions_per_day": impressions, "simulate_seed": sizes.sim_seed},
        "training": training,
        "heads": [dict(dataclasses.asdict(h), value_threshold=0.0) for h in DEFAULT_HEADS],
    })


def component_windows(events: Sequence[Any]) -> list[dict[str, Any]]:
    """[{name, start, end}] of every finished component, in the order they started (wall-clock
    seconds), from the runner's progress events (`pipeline.tfx_logging.ComponentEvent`)."""
    from watchnext.pipeline.tfx_logging import FINISHED, STARTED

    starts = {e.component: e.time for e in events if e.kind == STARTED}
    windows = [{"name": e.component, "start": starts.get(e.component, e.time - (e.seconds or 0.0)),
                "end": e.time} for e in events if e.kind == FINISHED]
    return sorted(windows, key=lambda w: w["start"])


def child_main(spec_path: str) -> int:
    """Simulate, run the pipeline and write the timeline JSON named in the spec (runs in the child)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    logging.getLogger("absl").propagate = False
    for noisy in ("apache_beam", "tensorflow", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    sizes = Sizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["sizes"].items()})
    # Everything heavy is imported before the clock of the first phase starts.
    from watchnext.pipeline import local_runner, metadata
    from watchnext.pipeline.tfx_logging import STARTED
    from watchnext.simulator.simulate import params_from_data_config, simulate

    config = child_config(spec["output_dir"], spec["impressions"], sizes)
    paths = local_runner.RunPaths(config.pipeline.output_dir)
    timeline: dict[str, Any] = {"impressions": spec["impressions"], "pid": os.getpid()}

    def on_event(kind: str, phase: str, when: float, **extra: Any) -> None:
        # One line per stamp, flushed at once: the parent reads it if the run never finishes.
        with open(spec["events_path"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": kind, "phase": phase, "time": when, **extra}) + "\n")

    sim_start = time.time()
    on_event("start", SIMULATE, sim_start)
    # In a process of its own: the simulator holds the whole day in memory (about 1.6 GB per 1M
    # impressions), and what it frees would otherwise stay in this process's RSS and be
    # counted against the pipeline's components. Its RSS is still sampled (a descendant).
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        summary = pool.submit(simulate, paths.simulated_logs, params_from_data_config(config.data)).result()
    timeline["simulate"] = {"start": sim_start, "end": time.time(), "impressions": summary["impressions"],
                            "events": summary["events"], "bytes": directory_bytes(paths.simulated_logs)}
    on_event("end", SIMULATE, timeline["simulate"]["end"], impressions=summary["impressions"],
             events=summary["events"])

    events: list[Any] = []

    def on_progress(event: Any) -> None:  # a pipeline.tfx_logging.ComponentEvent
        events.append(event)
        on_event("start" if event.kind == STARTED else "end", event.component, event.time)

    run_start = time.time()
    result = local_runner.run_local(config, paths.simulated_logs, on_progress=on_progress)
    run_end = time.time()
    timeline["run"] = {"start": run_start, "end": run_end, "seconds": result.seconds,
                       "pushed": result.pushed_path is not None, "blessed": result.blessed,
                       "message": result.message}
    timeline["components"] = component_windows(events)
    counts = metadata.latest_counts(paths.metadata_path)  # what LogExampleGen read and wrote
    timeline["ingestion"] = counts[0] if counts else None
    timeline["model"] = trained_model(paths.metadata_path)
    timeline["artifact_bytes"] = directory_bytes(paths.pipeline_root)
    timeline["finish"] = time.time()
    with open(spec["timeline_path"], "w", encoding="utf-8") as f:
        json.dump(timeline, f, indent=1)
    return 0


def trained_model(metadata_path: str) -> dict[str, Any]:
    """What the run trained: the Trainer's training.json and the Evaluator's overall metric per head."""
    from watchnext.components.evaluator.metrics import OVERALL
    from watchnext.models import run_summary
    from watchnext.pipeline import metadata

    run = metadata.latest_model_run(metadata_path)
    training = run_summary.read(run) if run else None
    evaluation = metadata.latest_evaluation(metadata_path) or {}
    heads = {}
    for name, head in (evaluation.get("heads") or {}).items():
        overall = head.get("slices", {}).get(OVERALL, {})
        heads[name] = {k: overall[k] for k in ("auc", "mse", "n") if k in overall}
    if training:
        training = {k: v for k, v in training.items() if k != "position_curve"}
    return {"training": training, "heads": heads}


# ---------------------------------------------------------------------------
# The parent: one child per size, sampled; then the report.


def measure_size(work_dir: str, impressions: int, sizes: Sizes) -> dict[str, Any]:
    """Run one size in a child process while sampling its process tree; return its figures."""
    run_dir = os.path.join(work_dir, f"pipeline-{impressions}")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    spec_path = os.path.join(run_dir, "spec.json")
    timeline_path = os.path.join(run_dir, "timeline.json")
    events_path = os.path.join(run_dir, "events.jsonl")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump({"impressions": impressions, "sizes": dataclasses.asdict(sizes),
                   "output_dir": os.path.join(run_dir, "output"), "timeline_path": timeline_path,
                   "events_path": events_path}, f)
    log.info("pipeline_scale: %d impressions in a child process (%s)", impressions, run_dir)
    launch = time.time()
    child = subprocess.Popen([sys.executable, "-m", "bench.pipeline_scale", spec_path], env=bench.child_env())
    reason = None
    with RssSampler(child.pid, sizes.sample_seconds) as sampler:
        while True:
            try:
                code = child.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                latest = sampler.samples[-1][1] if sampler.samples else None
                reason = limit_reason(time.time() - launch, latest, sizes)
                if reason is None:
                    continue
                log.warning("pipeline_scale: %d impressions: %s", impressions, reason)
                stop_tree(child)
                code = child.returncode
                break
    exit_time = time.time()
    if reason is None and code == 0 and os.path.exists(timeline_path):
        with open(timeline_path, encoding="utf-8") as f:
            timeline = json.load(f)
        summary = summarize_size(timeline, sampler.samples, launch, exit_time)
    else:
        reason = reason or f"the child exited with code {code} (its log is above; its files are in {run_dir})"
        summary = summarize_unfinished(impressions, read_events(events_path), sampler.samples, launch,
                                       exit_time, reason, os.path.join(run_dir, "output"))
    # Kept beside the run: the figures of a size survive a later size's failure.
    with open(os.path.join(run_dir, "measured.json"), "w", encoding="utf-8") as f:
        json.dump(jsonable(summary), f)
    return summary


def stop_tree(child: subprocess.Popen) -> None:
    """Terminate the child this benchmark started and its descendants (SIGTERM, then SIGKILL after 30 s)."""
    import psutil

    try:
        processes = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        processes = []
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(processes, timeout=30)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    child.wait()


def read_events(path: str) -> list[dict[str, Any]]:
    """The child's start/end stamps (events.jsonl), oldest first; [] if it wrote none."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize_unfinished(impressions: int, events: Sequence[dict[str, Any]],
                         samples: Sequence[tuple[float, int, int]], launch: float, exit_time: float,
                         reason: str, output_dir: str | None = None) -> dict[str, Any]:
    """What a run that did not finish got through: finished phases, the one it stopped in, the peak so far.

    The simulator's counts come from its end stamp; what LogExampleGen read from the
    counts.json it left under `output_dir` (when it finished before the stop).
    """
    starts = {e["phase"]: e["time"] for e in events if e["event"] == "start"}
    ends = {e["phase"]: e for e in events if e["event"] == "end"}
    first = min(starts.values(), default=exit_time)
    finished = [(name, t, ends[name]["time"]) for name, t in starts.items() if name in ends]
    phases = [(STARTUP, launch, first), *finished]
    seconds = {name: end - start for name, start, end in phases}
    peaks = phase_peaks(samples, phases)
    running = [name for name in starts if name not in ends]
    sim_end = ends.get(SIMULATE, {})
    sim_seconds = seconds.get(SIMULATE)
    counts = ingestion_from_disk(output_dir) if output_dir else None
    logs = os.path.join(output_dir, "simulated_logs") if output_dir else None
    log_bytes = directory_bytes(logs) if logs and SIMULATE in ends else None
    stopped_in = [(running[-1], starts[running[-1]], exit_time)] if running else []
    running_peak = max((p["peak_rss_bytes"] for p in phase_peaks(samples, stopped_in).values()
                        if p["peak_rss_bytes"] is not None), default=None)
    return {
        "impressions": impressions,
        "finished": False,
        "reason": reason,
        "events": sim_end.get("events"),
        "seconds": seconds,
        "peak_rss_mb": {name: (p["peak_rss_bytes"] / MB if p["peak_rss_bytes"] is not None else None)
                        for name, p in peaks.items()},
        "running": running[-1] if running else None,
        "running_seconds": exit_time - starts[running[-1]] if running else None,
        "running_peak_rss_mb": running_peak / MB if running_peak is not None else None,
        "total_seconds": exit_time - launch,
        "peak_rss_mb_overall": max(rss for _, rss, _ in samples) / MB if samples else None,
        # The simulator writes exactly the impressions asked for, so a missing stamp count is that number.
        "simulator": _simulator_rates(sim_end.get("impressions", impressions), sim_end.get("events"),
                                      sim_seconds, log_bytes),
        "ingestion": _ingestion_rates(counts, seconds.get(EXAMPLE_GEN)),
        "rss_timeline": downsample([(round(t - launch, 1), round(rss / MB, 1)) for t, rss, _ in samples]),
        "phase_windows": [(name, t0 - launch, t1 - launch) for name, t0, t1 in [*phases, *stopped_in]],
    }


def ingestion_from_disk(output_dir: str) -> dict[str, Any] | None:
    """The counts.json a LogExampleGen run left in its RejectedRecords folder (None if it never finished)."""
    found = sorted(glob.glob(os.path.join(output_dir, "tfx", EXAMPLE_GEN, "*", "*", "counts.json")))
    if not found:
        return None
    with open(found[-1], encoding="utf-8") as f:
        return json.load(f)


def _per_second(rows: float | None, seconds: float | None) -> float | None:
    return rows / seconds if rows is not None and seconds else None


def _simulator_rates(impressions: int | None, events: int | None, seconds: float | None,
                     log_bytes: int | None) -> dict[str, Any]:
    return {"seconds": seconds, "impressions_per_second": _per_second(impressions, seconds),
            "events_per_second": _per_second(events, seconds),
            "log_mb": log_bytes / MB if log_bytes is not None else None}


def _ingestion_rates(counts: dict[str, Any] | None, seconds: float | None) -> dict[str, Any]:
    """Rows LogExampleGen read (its counts.json) and per second of its wall time."""
    counts = counts or {}
    impressions = (counts.get("impressions") or {}).get("read")
    events = (counts.get("events") or {}).get("read")
    return {"seconds": seconds, "impressions_read": impressions, "events_read": events,
            "examples": counts.get("examples"), "impressions_per_second": _per_second(impressions, seconds),
            "events_per_second": _per_second(events, seconds)}


def summarize_size(timeline: dict[str, Any], samples: Sequence[tuple[float, int, int]], launch: float,
                   exit_time: float) -> dict[str, Any]:
    """Seconds and peak RSS per phase, rows/s and totals of one size from its timeline and samples."""
    sim, run = timeline["simulate"], timeline["run"]
    components = timeline["components"]
    phases = [(STARTUP, launch, sim["start"]), (SIMULATE, sim["start"], sim["end"])]
    phases += [(c["name"], c["start"], c["end"]) for c in components]
    peaks = phase_peaks(samples, phases)
    # Samples inside run_local but in no component: pipeline compilation, MLMD, launcher set-up.
    inside = [(t, rss, n) for t, rss, n in samples if run["start"] <= t < run["end"]
              and not any(c["start"] <= t < c["end"] for c in components)]
    orchestration_seconds = (run["end"] - run["start"]) - sum(c["end"] - c["start"] for c in components)
    peaks[ORCHESTRATION] = phase_peaks(inside, [(ORCHESTRATION, -math.inf, math.inf)])[ORCHESTRATION]
    peaks[FINISH] = phase_peaks(samples, [(FINISH, run["end"], math.inf)])[FINISH]
    seconds = {name: end - start for name, start, end in phases}
    seconds[ORCHESTRATION] = orchestration_seconds
    seconds[FINISH] = exit_time - run["end"]

    return {
        "impressions": timeline["impressions"],
        "finished": True,
        "events": sim["events"],
        "component_order": [c["name"] for c in components],
        "seconds": seconds,
        "peak_rss_mb": {name: (p["peak_rss_bytes"] / MB if p["peak_rss_bytes"] is not None else None)
                        for name, p in peaks.items()},
        "samples_per_phase": {name: p["samples"] for name, p in peaks.items()},
        "pipeline_seconds": run["seconds"],
        "total_seconds": exit_time - launch,
        "peak_rss_mb_overall": max(rss for _, rss, _ in samples) / MB if samples else None,
        "max_processes": max(n for _, _, n in samples) if samples else None,
        "simulator": _simulator_rates(sim["impressions"], sim["events"], sim["end"] - sim["start"],
                                      sim["bytes"]),
        "ingestion": _ingestion_rates(timeline.get("ingestion"), seconds.get(EXAMPLE_GEN)),
        "artifact_mb": timeline["artifact_bytes"] / MB,
        "model": timeline.get("model"),
        "pushed": run["pushed"],
        "blessed": run["blessed"],
        "message": run["message"],
        "rss_timeline": downsample([(round(t - launch, 1), round(rss / MB, 1)) for t, rss, _ in samples]),
        "phase_windows": [(name, start - launch, end - launch) for name, start, end in phases],
    }


def model_summary_table(runs: Sequence[dict[str, Any]]) -> Table:
    """The model each finished size trained: its budget, where it stopped and its eval metrics."""
    heads = list(dict.fromkeys(h for r in runs for h in ((r.get("model") or {}).get("heads") or {})))
    table = Table("The model each size trained (the Evaluator's overall AUC, or MSE, per head on the eval "
                  "split)", ["impressions", "train examples", "batch", "steps", "epochs", "best step",
                             "stopped because", *heads])
    for r in runs:
        model = r.get("model") or {}
        training, metrics = model.get("training") or {}, model.get("heads") or {}
        if not training and not metrics:
            continue

        def metric(name: str, metrics: dict[str, Any] = metrics) -> str:
            m = metrics.get(name, {})
            return (f"AUC {m['auc']:.4f}" if m.get("auc") is not None
                    else f"MSE {m['mse']:.4g}" if m.get("mse") is not None else "—")

        table.rows.append([f"{r['impressions']:,}", _count(training.get("train_examples")),
                           _count(training.get("batch_size")), _count(training.get("steps")),
                           _cell(training.get("epochs"), 2), _count(training.get("best_step")),
                           str(training.get("stop_reason", "—")), *(metric(h) for h in heads)])
    return table


def _label(n: int) -> str:
    """10000 → "10k", 1000000 → "1M"."""
    for factor, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)


def _cell(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    measured = [measure_size(context.work_dir, n, sizes) for n in sorted(sizes.impression_sizes)]
    return build_result(measured, sizes)


def build_result(measured: Sequence[dict[str, Any]], sizes: Sizes) -> BenchmarkResult:
    """Tables, slopes, notes and plots from every size's summary (finished or stopped), smallest first.

    A stopped size keeps a column: the phases it completed are measured like any other
    and enter the slopes; its totals do not exist and stay empty.
    """
    runs = sorted(measured, key=lambda r: r["impressions"])
    if not any(r["finished"] for r in runs):
        raise RuntimeError("pipeline_scale: no size finished: "
                           + "; ".join(f"{r['impressions']}: {r['reason']}" for r in runs))
    finished = [r for r in runs if r["finished"]]
    ns = [r["impressions"] for r in runs]
    labels = [_label(n) + ("" if r["finished"] else " (stopped)") for n, r in zip(ns, runs, strict=True)]
    components = dict.fromkeys(c for r in runs for c in r.get("component_order", r["seconds"]))
    components.update(dict.fromkeys(r["running"] for r in runs if not r["finished"] and r["running"]))
    order = [STARTUP, SIMULATE, *(c for c in components if c not in (STARTUP, SIMULATE)), ORCHESTRATION,
             FINISH]
    growth = {name: growth_exponents(ns, [r["seconds"].get(name) for r in runs]) for name in order}
    growth["pipeline total"] = growth_exponents(ns, [r.get("pipeline_seconds") for r in runs])
    rss_growth = growth_exponents([r["impressions"] for r in finished],
                                  [r["peak_rss_mb_overall"] for r in finished])

    slope_columns = [f"slope {_label(a)}→{_label(b)}" for a, b in itertools.pairwise(ns)]
    if len(ns) > 2:
        slope_columns.append("fit")

    def slopes(name: str) -> list[str]:
        g = growth[name]
        cells = [_cell(s, 2) for s in g["pairwise"]]
        return cells + ([_cell(g["fit"], 2)] if len(ns) > 2 else [])

    def seconds_cell(r: dict[str, Any], name: str) -> str:
        if not r["finished"] and name == r["running"]:
            return f"> {r['running_seconds']:,.0f} (stopped)"
        return _cell(r["seconds"].get(name))

    time_table = Table("Wall time per component (s) and its growth exponent (log-log slope of time vs "
                       "impressions)", ["phase"] + [f"{lab} s" for lab in labels] + slope_columns)
    for name in order:
        time_table.rows.append([name] + [seconds_cell(r, name) for r in runs] + slopes(name))
    def stopped(r: dict[str, Any], text: str) -> str:
        return "" if r["finished"] else text

    time_table.rows.append(["**pipeline total** (run_local)"]
                           + [_cell(r.get("pipeline_seconds")) for r in runs] + slopes("pipeline total"))
    time_table.rows.append(["**child process total**"]
                           + [_cell(r["total_seconds"]) + stopped(r, " (stopped)") for r in runs]
                           + [""] * len(slope_columns))

    rss_table = Table("Peak RSS of the process tree while each phase ran (MB; — = no sample fell inside, "
                      "or the phase did not finish)", ["phase"] + [f"{lab} MB" for lab in labels])
    def rss_cell(r: dict[str, Any], name: str) -> str:
        if not r["finished"] and name == r["running"] and r.get("running_peak_rss_mb") is not None:
            return _cell(r["running_peak_rss_mb"], 0) + " (so far)"
        return _cell(r["peak_rss_mb"].get(name), 0)

    for name in order:
        rss_table.rows.append([name] + [rss_cell(r, name) for r in runs])
    rss_table.rows.append(["**overall peak**"] + [_cell(r["peak_rss_mb_overall"], 0)
                                                  + stopped(r, " (until stopped)") for r in runs])

    marginal = {
        "simulator": marginal_rates(ns, [r["simulator"]["seconds"] for r in runs]),
        "ingestion": marginal_rates([r["ingestion"]["impressions_read"] or 0 for r in runs],
                                    [r["ingestion"]["seconds"] for r in runs]),
    }
    rate_table = Table("Rows per second (marginal: extra impressions ÷ extra seconds vs the size before, "
                       "which removes the fixed cost) and sizes", [
        "impressions", "events", "simulator s", "simulator impressions/s (marginal)", "simulator events/s",
        "log MB", "LogExampleGen s", "LogExampleGen impressions/s (marginal)", "LogExampleGen events/s",
        "examples train / eval", "artifacts MB", "pushed"])
    for i, r in enumerate(runs):
        sim, ing = r["simulator"], r["ingestion"]
        examples = ing["examples"] or {}

        def with_marginal(rate: float | None, key: str, i: int = i) -> str:
            m = marginal[key][i]
            return _rate(rate) + (f" ({_rate(m)})" if m is not None else "")

        outcome = (("yes" if r["pushed"] else f"no ({r['message']})") if r["finished"]
                   else r["reason"])
        rate_table.rows.append([
            f"{r['impressions']:,}", _count(r.get("events")), _cell(sim["seconds"]),
            with_marginal(sim["impressions_per_second"], "simulator"), _rate(sim["events_per_second"]),
            _cell(sim.get("log_mb")), _cell(ing["seconds"]),
            with_marginal(ing["impressions_per_second"], "ingestion"),
            _rate(ing["events_per_second"]),
            f"{_count(examples.get('train'))} / {_count(examples.get('eval'))}",
            _cell(r.get("artifact_mb"), 0), outcome])

    model_table = model_summary_table(finished)
    budget = (f"training.train_steps is fixed at {sizes.steps} (batch {sizes.batch_size}, eval_steps "
              f"{sizes.eval_steps}) at every size, so the Trainer's time is the fixed cost of tracing, "
              "training and exporting the model, not a function of the data; its slope says nothing about "
              "data growth." if sizes.steps else
              "Training budget: the config's training.epochs with early stopping on the eval loss "
              f"(batch {sizes.batch_size or 'of the config'}, validation on {sizes.eval_steps or 'all'} eval "
              "batches), so the model trains on all the data and the Trainer's time grows with it.")
    notes = [
        budget + " Every other component reads the whole span.",
        "Default config otherwise (model, Beam DirectRunner in one process, data.eval_percent), except the "
        "heads' absolute blessing floors (value_threshold), set to 0 so that whether the Pusher copies a "
        "model does not hinge on a small model's AUC (a NaN metric still blocks it). "
        f"One simulated day, simulator seed {sizes.sim_seed}, a fresh output folder per size, no cache, "
        "no warm start.",
        "Each size runs in its own child process: its startup phase is the interpreter and the TFX/"
        "TensorFlow imports. A component's time runs from the orchestrator's 'is running' to its 'is "
        "finished' (driver, executor and publisher), as the runner's on_progress events record it.",
        f"Peak RSS: the summed resident set of the child and all its descendants (psutil), sampled every "
        f"{sizes.sample_seconds} s; pages shared between processes would count once per process. A phase "
        "shorter than the interval may hold no sample (—). Python and TensorFlow keep freed memory, so "
        "a phase's peak includes what earlier phases left resident.",
        "Growth exponent: log(t2/t1)/log(n2/n1) between neighbouring sizes (1 = linear, 0 = fixed cost)"
        + ("; 'fit' is the least-squares slope over the sizes that have the phase." if len(ns) > 2 else "."),
        "Ingestion rows/s: impressions (and events) LogExampleGen read (its counts.json) over its wall time, "
        "which includes parsing, validation, the Beam join and writing tf.Examples. Simulator rows/s: "
        "impressions (events) simulated and written (impressions, events and truth logs) per second.",
    ]
    for r in runs:
        if not r["finished"]:
            where = f"in {r['running']} after {r['running_seconds']:,.0f} s; " if r["running"] else "; "
            notes.append(f"{r['impressions']:,} impressions: {r['reason']}, {where}"
                         "the phases it completed are in the tables, its totals are not.")
    if len(finished) > 1:
        exponent = rss_growth["fit"] if len(finished) > 2 else rss_growth["pairwise"][0]
        notes.append(f"The overall peak RSS of the finished sizes grows with exponent {_cell(exponent, 2)} "
                     "in the impressions.")

    def series(values: Sequence[float | None]) -> list[float]:
        return [math.nan if v is None else v for v in values]

    def draw_scaling(fig: Any) -> None:
        ax_time, ax_rss = fig.subplots(1, 2)
        plotted = [name for name in order
                   if max((r["seconds"].get(name) or 0.0) for r in runs) >= PLOT_MIN_SECONDS]
        for name in plotted:
            ax_time.plot(ns, series([r["seconds"].get(name) for r in runs]), marker="o", label=name)
            ax_rss.plot(ns, series([r["peak_rss_mb"].get(name) for r in runs]), marker="o", label=name)
        ax_time.plot(ns, series([r.get("pipeline_seconds") for r in runs]), marker="s", color="k", lw=2,
                     label="pipeline total")
        ax_rss.plot(ns, series([r["peak_rss_mb_overall"] if r["finished"] else None for r in runs]),
                    marker="s", color="k", lw=2, label="overall peak")
        # Slope-1 guide through the smallest size's total: a stage parallel to it grows linearly.
        ax_time.plot(ns, [runs[0]["total_seconds"] * n / ns[0] for n in ns], color="0.6", ls="--",
                     lw=1, label="∝ impressions (slope 1)")
        ax_time.set_xscale("log")
        ax_time.set_yscale("log")
        ax_time.set_xlabel("impressions (one day)")
        ax_time.set_ylabel("wall time (s)")
        cut = [_label(r["impressions"]) for r in runs if not r["finished"]]
        trainer = f"fixed {sizes.steps} steps" if sizes.steps else "epochs with early stopping"
        ax_time.set_title(f"Time per component (Trainer: {trainer})"
                          + (f"; {', '.join(cut)} stopped" if cut else ""))
        ax_rss.set_xscale("log")
        ax_rss.set_xlabel("impressions (one day)")
        ax_rss.set_ylabel("peak RSS of the process tree (MB)")
        ax_rss.set_ylim(bottom=0)
        ax_rss.set_title("Peak memory while each component ran")
        ax_time.legend(fontsize=7)

    with_timeline = [r for r in runs if r.get("rss_timeline")]

    def draw_timeline(fig: Any) -> None:
        ax = fig.subplots()
        largest = with_timeline[-1]
        ax.plot([t for t, _ in largest["rss_timeline"]], [mb for _, mb in largest["rss_timeline"]],
                color="k", lw=1)
        # Phases under a second would be invisible slivers; leaving them out keeps colours distinct.
        shown = [(name, start, end) for name, start, end in largest["phase_windows"] if end - start >= 1]
        for i, (name, start, end) in enumerate(shown):
            ax.axvspan(start, end, color=f"C{i % 10}", alpha=0.25, lw=0, label=name)
        ax.set_xlabel("seconds since the child process started")
        ax.set_ylabel("RSS of the process tree (MB)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Memory over time at {largest['impressions']:,} impressions"
                     + ("" if largest["finished"] else " (stopped)"))
        ax.legend(fontsize=7, loc="upper left")

    plots = [Plot("scaling", "Wall time per component vs impressions (log-log; components under "
                  f"{PLOT_MIN_SECONDS:g} s at every size left out) and peak RSS of the process tree while "
                  "each ran", draw_scaling, size=(13.0, 5.5))]
    if with_timeline:
        plots.append(Plot("timeline", "RSS of the process tree over the largest run with a stored timeline, "
                          "phases shaded", draw_timeline, size=(11.0, 5.0)))
    figures = {
        "impressions": ns,
        "runs": runs,
        "growth_exponents": growth,
        "marginal_impressions_per_second": marginal,
        "peak_rss_growth_exponent": rss_growth,
    }
    return BenchmarkResult(
        name=report_name(sizes),
        title="Full local pipeline: wall time and peak RSS per component vs impressions",
        parameters=dataclasses.asdict(sizes),
        figures=figures,
        tables=[time_table, rss_table, rate_table, *([model_table] if model_table.rows else [])],
        plots=plots,
        notes=notes,
    )


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
