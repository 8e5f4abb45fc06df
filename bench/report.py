"""What every benchmark writes: `<name>.json`, `<name>.md` and PNG plots, with the machine they ran on.

A benchmark returns a `BenchmarkResult` (its parameters, every figure as JSON-able data,
Markdown tables, notes and plot-drawing functions); `write_report` adds the machine
(CPU model, cores, load average before and after, package versions, date, commit) and
writes the files. Figures measured on a loaded machine are only comparable with figures
taken under the same load, so the load average is always recorded next to them.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

import numpy as np

# Distribution names whose versions go into every report.
VERSIONED_PACKAGES = ("tensorflow", "tf-keras", "tensorflow-recommenders", "tfx", "tensorflow-transform",
                      "tfx-bsl", "apache-beam", "numpy", "scikit-learn", "matplotlib", "deepctr")


@dataclass
class Table:
    """A Markdown table: a title, column names and rows of already formatted cells."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Plot:
    """One PNG: `draw(figure)` fills a matplotlib Figure; the file is `<benchmark>_<name>.png`."""

    name: str
    caption: str
    draw: Callable[[Any], None]
    size: tuple[float, float] = (8.0, 5.0)


@dataclass
class BenchmarkResult:
    """What a benchmark measured, before the machine and the files are added."""

    name: str
    title: str
    parameters: dict[str, Any]
    figures: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """CPU, cores, load, Python and package versions, date and commit."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "nproc": cores,
        "cpu_count": os.cpu_count(),
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays made plain and NaN/inf made null (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(result: BenchmarkResult, out_dir: str, machine_before: dict[str, Any],
                 wall_seconds: float) -> dict[str, str]:
    """Write `<out>/<name>.json`, `.md` and the plots; return {kind: path}."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    os.makedirs(out_dir, exist_ok=True)
    paths: dict[str, str] = {}
    plot_files = []
    for plot in result.plots:
        fig = Figure(figsize=plot.size, layout="constrained")
        plot.draw(fig)
        filename = f"{result.name}_{plot.name}.png"
        fig.savefig(os.path.join(out_dir, filename), dpi=110)
        plot_files.append({"file": filename, "caption": plot.caption})
        paths[f"plot:{plot.name}"] = os.path.join(out_dir, filename)

    machine = dict(machine_before)
    machine["load_average_after"] = load_average()
    document = {
        "benchmark": result.name,
        "title": result.title,
        "date": machine["date"],
        "wall_seconds": round(wall_seconds, 1),
        "machine": machine,
        "parameters": result.parameters,
        "figures": result.figures,
        "notes": result.notes,
        "plots": plot_files,
    }
    paths["json"] = os.path.join(out_dir, f"{result.name}.json")
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(jsonable(document), f, indent=1, sort_keys=False, allow_nan=False)
        f.write("\n")
    paths["md"] = os.path.join(out_dir, f"{result.name}.md")
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write(markdown(result, machine, wall_seconds, plot_files))
    return paths


def markdown(result: BenchmarkResult, machine: dict[str, Any], wall_seconds: float,
             plot_files: list[dict[str, str]]) -> str:
    """The report as Markdown: where and how it ran, the tables, the notes and the plots."""
    v = machine["versions"]
    lines = [
        f"# {result.title}",
        "",
        f"`python -m bench {result.name}`, {machine['date']}, {wall_seconds:.0f} s wall. "
        f"{machine['cpu_model']}, {machine['nproc']} cores; load average (1/5/15 min) "
        f"{_triple(machine['load_average'])} before, {_triple(machine['load_average_after'])} after"
        f"{' (measured under load: other jobs shared the cores)' if _loaded(machine) else ''}. "
        f"TensorFlow {v.get('tensorflow')}, tf-keras {v.get('tf-keras')}, TFRS "
        f"{v.get('tensorflow-recommenders')}, TFX {v.get('tfx')}; "
        f"commit {str(machine.get('git_commit'))[:10]}.",
        "",
        "Parameters: " + ", ".join(f"{k}={_short(val)}" for k, val in result.parameters.items()),
        "",
    ]
    for table in result.tables:
        lines += [table.markdown(), ""]
    if result.notes:
        lines += ["### Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    for p in plot_files:
        lines += [f"![{p['caption']}]({p['file']})", "", f"*{p['caption']}*", ""]
    return "\n".join(lines)


def _triple(values: Sequence[float]) -> str:
    return "/".join(f"{x:.2f}" for x in values)


def _loaded(machine: dict[str, Any]) -> bool:
    """Whether other work probably shared the cores (1-minute load above half the cores before we ran)."""
    return machine["load_average"][0] > 0.5 * (machine["nproc"] or 1)


def _short(value: Any) -> str:
    text = json.dumps(jsonable(value))
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------
# Formatting helpers shared by the benchmarks.


def mean_sd(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "sd" (sample, ddof=1; None for one value), "n", "values"} of finite `values`."""
    xs = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    n = len(xs)
    mean = float(np.mean(xs)) if n else float("nan")
    sd = float(np.std(xs, ddof=1)) if n > 1 else float("nan")
    return {"mean": mean, "sd": sd, "n": n, "values": xs}


def fmt(stat: dict[str, Any] | float | None, digits: int = 3) -> str:
    """"m ± sd" for a mean_sd dict (just "m" for one value), or one number."""
    if stat is None:
        return "—"
    if isinstance(stat, dict):
        m, sd = stat["mean"], stat["sd"]
        if not math.isfinite(m):
            return "—"
        return f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if math.isfinite(sd) else "")
    return f"{stat:.{digits}f}" if math.isfinite(float(stat)) else "—"


def si(value: float, unit: str = "") -> str:
    """1.23e9 → "1.23 G" + unit."""
    if not math.isfinite(value):
        return "—"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()
