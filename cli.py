"""The `watchnext` command. Each subcommand parses flags and calls one library function."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

log = logging.getLogger("watchnext")
# Exit status of a run stopped by data validation (2: bad usage/config, 3: nothing blessed).
DATA_ANOMALIES_EXIT = 4


def _setup_logging(verbose: bool) -> None:
    # force: TensorFlow and absl install root handlers on import, which would win otherwise.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        force=True)
    if not verbose:
        # TFX, Beam and TensorFlow log every step; keep watchnext's own progress lines
        # (the local runner turns the orchestrator's absl lines into per-component ones).
        logging.getLogger("absl").propagate = False
        for noisy in ("apache_beam", "tensorflow", "py.warnings"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        import warnings

        warnings.filterwarnings("ignore", category=RuntimeWarning, module="tensorflow_model_analysis")
        warnings.filterwarnings("ignore", category=UserWarning)
        logging.captureWarnings(True)


def _config(args: argparse.Namespace) -> Any:
    from watchnext.pipeline.configs import load_config

    overrides: dict[str, Any] = {}
    if getattr(args, "output", None):
        overrides.setdefault("pipeline", {})["output_dir"] = args.output
    if getattr(args, "train_steps", None):
        overrides.setdefault("training", {})["train_steps"] = args.train_steps
    config = load_config(args.config, overrides)
    # --logs names the data of either source: the logs folder, or a table's CSV file or glob.
    return config.with_data_path(args.logs) if getattr(args, "logs", None) else config


def simulated_logs(config: Any, out_dir: str) -> str:
    """Simulate the config's default log into `out_dir` unless the same log is already there.

    Re-simulating would touch the files and make ExampleGen re-ingest them, so an
    identical earlier simulation (same parameters) is reused.
    """
    from watchnext.simulator.simulate import params_from_data_config, simulate

    params = params_from_data_config(config.data)
    marker = os.path.join(out_dir, "simulation.json")
    wanted = json.dumps(dataclasses.asdict(params), sort_keys=True, default=list)
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            if json.dumps(json.load(f)["params"], sort_keys=True, default=list) == wanted:
                log.info("reusing the simulated log in %s", out_dir)
                return out_dir
    summary = simulate(out_dir, params)
    with open(marker, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=list)
    return out_dir


def cmd_run(args: argparse.Namespace) -> int:
    from watchnext.components.data_gate import DataValidationFailed
    from watchnext.models.expert_utilization import alarms
    from watchnext.pipeline.local_runner import RunPaths, latest_utilization, run_local

    config = _config(args)
    if config.data.source == "table" and not config.data_path:
        raise FileNotFoundError("data.source is table but no table is given: pass --logs PATH (the CSV "
                                "file or glob) or set data.table.path in the config")
    logs_dir = config.data_path or simulated_logs(config, RunPaths(config.pipeline.output_dir).simulated_logs)
    log.info("running pipeline %r on %s into %s", config.pipeline.name, logs_dir, config.pipeline.output_dir)
    metadata_path = RunPaths(config.pipeline.output_dir).metadata_path
    try:
        result = run_local(config, logs_dir)
    except DataValidationFailed:
        _log_ingestion(metadata_path)  # what the stopped run read; main prints why it stopped
        raise
    log.info("pipeline finished in %.0fs", result.seconds)
    _log_ingestion(metadata_path)
    for alarm in alarms(latest_utilization(metadata_path) or {}):
        print(f"ALARM {alarm}", file=sys.stderr)
    _report(config)
    print(result.pushed_path if result.pushed_path else result.message)
    return 0 if result.pushed_path or result.blessed else 3


def _log_ingestion(metadata_path: str) -> None:
    from watchnext.pipeline.local_runner import latest_ingestion

    ingestion = latest_ingestion(metadata_path)
    if ingestion:
        log.info("%s", ingestion)


def cmd_backfill(args: argparse.Namespace) -> int:
    from watchnext.pipeline.local_runner import backfill

    config = _config(args)
    results = backfill(config, args.logs, args.first, args.last)
    for span, result in results:
        print(f"{span}: {result.pushed_path or result.message}")
    _report(config)
    return 0


def _report(config: Any) -> str | None:
    from watchnext.pipeline.local_runner import RunPaths
    from watchnext.pipeline.report import write_report

    try:
        path = write_report(config, RunPaths(config.pipeline.output_dir).metadata_path)
    except FileNotFoundError as e:
        log.warning("no evaluation report: %s", e)
        return None
    log.info("evaluation report: %s", path)
    return path


def cmd_report(args: argparse.Namespace) -> int:
    path = _report(_config(args))
    if path is None:
        return 1
    with open(path, encoding="utf-8") as f:
        print(f.read())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from watchnext.simulator.simulate import from_args, simulate

    summary = simulate(args.out, from_args(args))
    print(json.dumps({k: summary[k] for k in ("out_dir", "impressions", "events", "seconds")}))
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from watchnext.serving.client import (
        GrpcBackend,
        InProcessBackend,
        RankRequestError,
        RestBackend,
        rank,
    )

    config = _config(args)
    try:
        with open(args.request, encoding="utf-8") if args.request != "-" else sys.stdin as f:
            request = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"watchnext rank: cannot read the request {args.request}: {e}", file=sys.stderr)
        return 2
    if args.grpc:
        backend: Any = GrpcBackend(args.grpc, args.model_name or config.serving.model_name)
    elif args.rest:
        backend = RestBackend(args.rest, args.model_name or config.serving.model_name)
    else:
        backend = InProcessBackend(args.model or latest_pushed(config))
    try:
        ranked = rank(request, backend, config.head_names, [h.score_weight for h in config.heads])
    except RankRequestError as e:
        print(f"watchnext rank: INVALID_ARGUMENT: {e}", file=sys.stderr)
        return 2
    answer = [{"rank": i + 1, "score": r.score, "predictions": r.predictions, **r.candidate}
              for i, r in enumerate(ranked[: args.top or None])]
    print(json.dumps(answer, indent=1))
    return 0


def latest_pushed(config: Any) -> str:
    """The newest version under <serving_dir>/<model_name>/ (what TF Serving would serve)."""
    from watchnext.components.atomic_pusher import version_dirs

    root = os.path.join(config.serving_dir, config.serving.model_name)
    versions = version_dirs(root)
    if not versions:
        raise SystemExit(f"watchnext: no pushed model under {root}; run `watchnext run` or pass --model DIR")
    return os.path.join(root, str(versions[-1]))


def cmd_check_serving(args: argparse.Namespace) -> int:
    import glob

    from watchnext.serving.fidelity import FidelityError, check_serving_fidelity

    import tensorflow as tf

    config = _config(args)
    model_dir = args.model or latest_pushed(config)
    pattern = args.examples or os.path.join(config.pipeline.output_dir, "tfx", "**", "Split-eval", "*.gz")
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        print(f"watchnext check-serving: no examples match {pattern}", file=sys.stderr)
        return 2
    compression = "GZIP" if files[0].endswith(".gz") else ""
    examples = [r.numpy() for r in tf.data.TFRecordDataset(files[:1], compression).take(args.count)]
    try:
        report = check_serving_fidelity(model_dir, examples)
    except FidelityError as e:
        print(f"watchnext check-serving: FAILED: {e}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(report), indent=1))
    print(f"OK: {model_dir} gives the same outputs (to float32 rounding) through TF Serving's loader path "
          f"({report.examples} examples, {report.op_count} op types, no Python ops)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchnext", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show TFX and Beam logs")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the local TFX pipeline and push a blessed model")
    run.add_argument("--output", help="output folder (default: pipeline.output_dir, ./watchnext_output)")
    run.add_argument("--config", help="YAML file with settings that differ from the defaults")
    run.add_argument("--logs", help="folder of impression/event logs (default: simulate one), or the CSV "
                                     "file/glob of a data.source table config (sets data.table.path)")
    run.add_argument("--train-steps", type=int, help="override training.train_steps")
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser("backfill", help="run the daily job over a range of spans, in order, resumably")
    backfill.add_argument("--logs", required=True, help="folder of impression/event logs")
    backfill.add_argument("--from", dest="first", type=int, required=True, help="first span, e.g. 20260101")
    backfill.add_argument("--to", dest="last", type=int, required=True, help="last span, e.g. 20260107")
    backfill.add_argument("--output", help="output folder (default ./watchnext_output)")
    backfill.add_argument("--config", help="YAML config")
    backfill.add_argument("--train-steps", type=int, help="override training.train_steps")
    backfill.set_defaults(func=cmd_backfill)

    report = sub.add_parser("report", help="write and print the newest evaluation as Markdown")
    report.add_argument("--output", help="output folder of the run (default ./watchnext_output)")
    report.add_argument("--config", help="YAML config")
    report.set_defaults(func=cmd_report)

    rank = sub.add_parser("rank", help="rank a request's candidates with a served model")
    rank.add_argument("--request", required=True, help="request JSON file (- for stdin); see README")
    target = rank.add_mutually_exclusive_group()
    target.add_argument("--model", help="SavedModel directory (default: the newest pushed version)")
    target.add_argument("--grpc", metavar="HOST:PORT", help="TF Serving gRPC endpoint, e.g. localhost:8500")
    target.add_argument("--rest", metavar="URL", help="TF Serving REST endpoint, e.g. http://localhost:8501")
    rank.add_argument("--model-name", help="served model name (default: serving.model_name)")
    rank.add_argument("--top", type=int, help="print only the best K")
    rank.add_argument("--config", help="YAML config (heads and weights; output dir)")
    rank.add_argument("--output", help="output folder of the run whose model to use")
    rank.set_defaults(func=cmd_rank)

    check = sub.add_parser("check-serving",
                           help="load a pushed model the way TF Serving does and compare its outputs")
    check.add_argument("--model", help="SavedModel directory (default: the newest pushed version)")
    check.add_argument("--examples", help="TFRecord glob of raw tf.Examples (default: the eval split)")
    check.add_argument("--count", type=int, default=256, help="how many examples to compare")
    check.add_argument("--config", help="YAML config")
    check.add_argument("--output", help="output folder of the run")
    check.set_defaults(func=cmd_check_serving)

    from watchnext.kubeflow.runner import add_arguments as add_kubeflow_arguments

    add_kubeflow_arguments(sub.add_parser("compile-kubeflow", help="compile the Kubeflow Pipelines v2 spec"))

    from watchnext.benchmarks import cli as bench_cli

    bench = sub.add_parser("bench", help="run a benchmark; writes <out>/<name>.json, .md and plots")
    bench_cli.add_arguments(bench)
    bench.set_defaults(func=bench_cli.run)

    from watchnext.simulator.simulate import add_arguments

    simulate = sub.add_parser("simulate", help="write simulated impression/event logs with ground truth")
    simulate.add_argument("--out", required=True, help="folder to write impressions/, events/, truth/ into")
    add_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    from watchnext.components.data_gate import DataValidationFailed
    from watchnext.pipeline.configs import ConfigError
    from watchnext.pipeline.output_lock import OutputInUse

    try:
        return args.func(args)
    except (ConfigError, OutputInUse, FileNotFoundError) as e:
        print(f"watchnext: {e}", file=sys.stderr)
        return 2
    except DataValidationFailed as e:
        print(f"watchnext: {e}", file=sys.stderr)
        return DATA_ANOMALIES_EXIT


if __name__ == "__main__":
    sys.exit(main())
