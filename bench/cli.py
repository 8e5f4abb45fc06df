"""`python -m bench <name>`: run one benchmark (or all), print its tables and write its report.

Run from the repository root (bench/ is not installed with watchnext); `make bench BENCH=<name>`
does the same at --quick sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

# Benchmark name → module (imported only when run: each pulls in TensorFlow).
BENCHMARKS = {
    "oracle": "bench.oracle",
    "learning_curve": "bench.learning_curve",
    "training_speed": "bench.training_speed",
    "serving_speed": "bench.serving_speed",
    "position_bias": "bench.position_bias",
    "expert_utilization": "bench.expert_utilization",
    "task_correlation": "bench.task_correlation",
    "census": "bench.census",
    "pipeline_scale": "bench.pipeline_scale",
    "online": "bench.online",
    "multi_worker": "bench.multi_worker",
    "deepctr_peer": "bench.deepctr_peer",
}
SIZE_NAMES = ("smoke", "quick", "full")
# Where reports go: a user's runs stay out of the committed reports/ unless published.
DEFAULT_OUT = os.path.join("watchnext_output", "bench")
PUBLISHED_OUT = "reports"

# Flags that override a field of a benchmark's Sizes (when it has that field), with their types.
OVERRIDES: dict[str, Any] = {"impressions": int, "steps": int, "seeds": int, "batch_size": int,
                             "beam_preset": str}
# Flags that override a tuple field of a benchmark's Sizes with a comma-separated list, e.g.
# `census --full --groups 1 --architectures mmoe` or `pipeline_scale --impression-sizes
# 1000000,10000000` (element type: the field's own).
LIST_OVERRIDES = {"groups": int, "architectures": str, "numeric_encodings": str, "impression_sizes": int}

log = logging.getLogger("watchnext.benchmarks")


class MissingExtra(Exception):
    """A benchmark needs an optional dependency (an extra of setup.py) that is not installed.

    Raised before any work, with a message that names the install command; `main` prints it as
    one line and exits with status 2, as for missing input data.
    """


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `python -m bench`."""
    parser.add_argument("name", choices=[*BENCHMARKS, "all"], help="which benchmark ('all': each in turn)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="small data, few steps, one seed: minutes on 2 cores (the default)")
    size.add_argument("--smoke", dest="size", action="store_const", const="smoke",
                      help="tiny: checks that the benchmark runs and writes its report (figures meaningless)")
    size.add_argument("--full", dest="size", action="store_const", const="full",
                      help="the sizes the published figures are read at (an hour or more each)")
    parser.set_defaults(size="quick")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", help=f"folder for <name>.json, <name>.md and plots (default {DEFAULT_OUT}, "
                                     "outside the committed reports/)")
    where.add_argument("--publish", action="store_const", dest="out", const=PUBLISHED_OUT,
                       help=f"write into {PUBLISHED_OUT}/, the reports the README cites (for maintainers)")
    parser.add_argument("--work-dir", help="keep featurized simulations here and reuse them on the next "
                                           "run with the same parameters (default: a temporary folder, "
                                           "removed afterwards); empty it after changing the simulator "
                                           "or the preprocessing_fn, which the cache key does not cover")
    for name, kind in OVERRIDES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"override the size's {name}")
    for name in LIST_OVERRIDES:
        parser.add_argument(f"--{name.replace('_', '-')}", type=str,
                            help=f"override the size's {name} (comma-separated)")
    parser.add_argument("--data", help="a benchmark's input data, for those that read a data set "
                                       "(census, deepctr_peer: the UCI file census-income.test.gz; "
                                       "required)")


def sizes_for(module: Any, size: str, args: argparse.Namespace | None = None) -> Any:
    """The module's Sizes for `size`, with the flags in OVERRIDES and LIST_OVERRIDES applied."""
    sizes = module.SIZES[size]
    fields = {f.name for f in dataclasses.fields(sizes)}
    changes: dict[str, Any] = {}
    for name in (*OVERRIDES, *LIST_OVERRIDES):
        value = getattr(args, name, None) if args is not None else None
        if value is None:
            continue
        flag = f"--{name.replace('_', '-')}"
        if name not in fields:
            raise SystemExit(f"python -m bench {module.NAME}: {flag} does not apply "
                             f"(its sizes are {sorted(fields)})")
        if name in LIST_OVERRIDES:
            try:
                value = tuple(LIST_OVERRIDES[name](v.strip()) for v in value.split(",") if v.strip())
            except ValueError:
                raise SystemExit(f"python -m bench {module.NAME}: {flag} {value!r}: a comma-separated "
                                 f"list of {LIST_OVERRIDES[name].__name__}") from None
            if not value:
                raise SystemExit(f"python -m bench {module.NAME}: {flag}: an empty list")
        changes[name] = value
    return dataclasses.replace(sizes, **changes)


def run_benchmark(name: str, size: str, out_dir: str, work_dir: str | None = None,
                  args: argparse.Namespace | None = None) -> dict[str, str]:
    """Run benchmark `name` at `size`; write its report into `out_dir`; return the written paths."""
    from bench import common
    from bench.report import machine_info, write_report

    module = importlib.import_module(BENCHMARKS[name])
    sizes = sizes_for(module, size, args)
    own_work_dir = work_dir is None
    work_dir = work_dir or tempfile.mkdtemp(prefix=f"watchnext-bench-{name}-")
    os.makedirs(work_dir, exist_ok=True)
    machine = machine_info()
    log.info("benchmark %s (%s): %s; load average %s on %d cores", name, size, sizes,
             machine["load_average"], machine["nproc"])
    t0 = time.time()
    try:
        result = module.run(common.Context(work_dir, data_path=getattr(args, "data", None) or ""), sizes)
    finally:
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    result.parameters = {"size": size, **result.parameters}
    paths = write_report(result, out_dir, machine, time.time() - t0)
    log.info("benchmark %s done in %.0f s: %s", name, time.time() - t0, paths)
    return paths


def run(args: argparse.Namespace) -> int:
    """Entry point of `python -m bench`: run, then print each report's Markdown."""
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    for name in names:
        paths = run_benchmark(name, args.size, args.out or DEFAULT_OUT, args.work_dir, args)
        with open(paths["md"], encoding="utf-8") as f:
            print(f.read())
        print("wrote " + ", ".join(sorted(paths.values())))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench`."""
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    logging.getLogger("absl").propagate = False
    for noisy in ("apache_beam", "tensorflow", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return run(args)
    except (FileNotFoundError, MissingExtra) as e:  # missing input data or optional dependency: one line
        print(f"python -m bench {args.name}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
