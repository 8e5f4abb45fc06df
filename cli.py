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
from watchnext.core.contract import SCORE_OUTPUT
from watchnext.core.errors import (
    EXIT_DATA_VALIDATION,
    EXIT_INTERNAL,
    EXIT_NOT_BLESSED,
    UsageError,
    WatchnextError,
)

log = logging.getLogger("watchnext")
# Exit statuses, one table for the README and the code (core/errors.py).
DATA_ANOMALIES_EXIT = EXIT_DATA_VALIDATION
_FORMAT = "%(asctime)s %(message)s"
# A log record with this attribute set goes to the log file, never to the default console.
_FILE_ONLY = "file_only"


class _ConsoleFilter(logging.Filter):
    """The default console: watchnext's own lines, and only errors from the libraries under it.

    TensorFlow, TFX and Beam log hundreds of lines a run that ask nothing of the user
    (plugin registration, deprecations, batching statistics). They all still reach the
    run's log file; `-v` shows them on the console too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _FILE_ONLY, False):
            return False
        if record.name == "watchnext" or record.name.startswith("watchnext."):
            return True
        # Library errors are logged where they happen and then raised: `main` prints the
        # raised one once, so only a critical line (a crash outside any raise) shows here.
        return record.levelno >= logging.CRITICAL


def _setup_logging(verbose: bool) -> None:
    """Console logging; `_log_to_file` adds the log file once the output folder is known."""
    if not verbose:
        # TensorFlow's C++ logging (CUDA plugin registration, oneDNN, TF-TRT) goes straight to
        # stderr and is read once, when TensorFlow loads: after this, before any import of it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    if not verbose:
        console.addFilter(_ConsoleFilter())
    # force: TensorFlow and absl install root handlers on import, which would win otherwise.
    logging.basicConfig(level=logging.INFO, handlers=[console], force=True)
    logging.captureWarnings(True)
    if not verbose:
        import warnings

        # Library warnings still reach the log file (captureWarnings), never the console.
        warnings.simplefilter("default")


def _log_to_file(output_dir: str, command: str) -> str:
    """Log everything (every library, INFO and up, tracebacks) to <output>/logs/<command>-<time>.log."""
    import time

    folder = os.path.join(output_dir, "logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{command}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.log")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    _LOG_FILES.append(path)
    return path


# The log files this process writes (the last is named when a run fails).
_LOG_FILES: list[str] = []


def _config(args: argparse.Namespace) -> Any:
    from watchnext.core.config import load_config

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


def _check_inputs(config: Any, command: str) -> str:
    """Refuse missing data and a busy output folder before anything heavy is imported.

    Returns the data path (the simulated log's folder is made later, by `cmd_run`). The
    pipeline checks the same again; these checks only make the common mistakes answer at once.
    """
    from watchnext.components.log_example_gen.layout import no_spans_message, spans_on_disk
    from watchnext.core.span_format import DEFAULT_SPAN_FORMAT, describe
    from watchnext.pipeline.output_lock import output_lock

    if config.data.source == "table" and not config.data_path:
        raise UsageError("data.source is table but no table is given: pass --logs PATH (the CSV "
                         "file or glob) or set data.table.path in the config")
    path = config.data_path
    if not path and config.data.source == "logs" and not config.log_schema.is_default:
        raise UsageError("the config declares its own log_schema but no logs are given: pass --logs PATH "
                         "(the simulator writes the default schema's logs only)")
    span_format = config.data.span_format
    if path and config.data.source == "logs":
        if not os.path.isdir(path):
            raise UsageError(f"--logs {path}: no such folder (expected "
                             f"{path}/impressions/{describe(span_format)}/...)")
        if not spans_on_disk(path, span_format):
            raise UsageError(no_spans_message(path, span_format))
    if not path and config.data.source == "logs" and span_format != DEFAULT_SPAN_FORMAT:
        raise UsageError(f"config key data.span_format: {span_format!r}, but no logs are given and the "
                         f"simulator writes daily {describe(DEFAULT_SPAN_FORMAT)} spans: pass --logs PATH "
                         f"(or set data.logs_dir), or keep data.span_format {DEFAULT_SPAN_FORMAT}")
    with output_lock(config.pipeline.output_dir):
        pass  # free now; the run takes it for good (a run that starts meanwhile is refused there)
    _log_to_file(config.pipeline.output_dir, command)
    return path


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    data_path = _check_inputs(config, "run")

    from watchnext.components.data_gate import DataValidationFailed
    from watchnext.models.expert_utilization import alarms
    from watchnext.pipeline.local_runner import RunPaths, run_local
    from watchnext.pipeline.metadata import latest_utilization

    logs_dir = data_path or simulated_logs(config, RunPaths(config.pipeline.output_dir).simulated_logs)
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
    from watchnext.pipeline import summary
    from watchnext.pipeline.metadata import latest_evaluation, latest_model_run

    print(summary.render(config, latest_evaluation(metadata_path), result.pushed_path,
                         config.pipeline.output_dir, latest_model_run(metadata_path),
                         config_path=args.config), file=sys.stderr)
    print(result.pushed_path if result.pushed_path else result.message)
    return 0 if result.pushed_path or result.blessed else EXIT_NOT_BLESSED


def _log_ingestion(metadata_path: str) -> None:
    from watchnext.pipeline.metadata import latest_ingestion

    ingestion = latest_ingestion(metadata_path)
    if ingestion:
        log.info("%s", ingestion)


def cmd_backfill(args: argparse.Namespace) -> int:
    config = _config(args)
    config = config.with_data_path(args.logs)
    _check_inputs(config, "backfill")
    from watchnext.pipeline.local_runner import backfill

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

    params = from_args(args)
    policy = None
    if args.policy:  # a served model ranks the slates (TensorFlow loads only then)
        _check_saved_model("--policy", args.policy)
        from watchnext.experiment.served import ServedModelPolicy

        config = _config(args)
        policy = ServedModelPolicy(args.policy, config.head_names, [h.score_weight for h in config.heads])
    only_days = None if args.only_day is None else [args.only_day]
    summary = simulate(args.out, params, policy=policy, only_days=only_days)
    print(json.dumps({k: summary[k] for k in ("out_dir", "impressions", "events", "seconds")}))
    return 0


def _check_saved_model(flag: str, path: str) -> None:
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise UsageError(f"{flag} {path}: not a SavedModel folder (no saved_model.pb); pass a pushed "
                         "version such as <output>/serving/watchnext/<version>")


def cmd_experiment(args: argparse.Namespace) -> int:
    from watchnext.experiment.live import ExperimentParams

    config = _config(args)
    _check_saved_model("--control", args.control)
    _check_saved_model("--treatment", args.treatment)
    given = {k: getattr(args, k) for k in ("days", "requests_per_day", "seed", "confidence")
             if getattr(args, k) is not None}
    params = ExperimentParams(**given)
    try:
        params.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None
    from watchnext.experiment.report import render, served_experiment, write

    report = served_experiment(args.control, args.treatment, config, params)
    out = args.report_dir or os.path.join(config.pipeline.output_dir, "experiments")
    json_path, md_path = write(report, out)
    print(render(report))
    log.info("experiment report: %s, %s", md_path, json_path)
    return 0


def cmd_closed_loop(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.days < 1:
        raise UsageError(f"--days {args.days}: must be >= 1")
    from watchnext.experiment.loop import run_closed_loop
    from watchnext.simulator.simulate import params_from_data_config

    _log_to_file(config.pipeline.output_dir, "closed-loop")
    days = run_closed_loop(config, params_from_data_config(config.data), args.days)
    for day in days:
        print(json.dumps({k: day[k] for k in ("day", "span", "policy", "pushed", "true_clicks_per_request",
                                              "true_watch_time_per_request", "true_likes_per_request",
                                              "true_dismiss_rate")}))
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
        ranked = rank(request, backend, config.head_names, [h.score_weight for h in config.heads],
                      config.log_schema.example_feature_types())
    except RankRequestError as e:
        print(f"watchnext rank: INVALID_ARGUMENT: {e}", file=sys.stderr)
        return 2
    answer = [{"rank": i + 1, SCORE_OUTPUT: r.score, "predictions": r.predictions, **r.candidate}
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


_VERBOSE_HELP = "show every library's log lines and tracebacks on the console"


def _shared_flags() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Parent parsers: -v for every subcommand, and --config/--output for those that read a run.

    -v works after the subcommand too (`watchnext run -v`); SUPPRESS keeps an earlier -v.
    """
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help=_VERBOSE_HELP)
    run_flags = argparse.ArgumentParser(add_help=False, parents=[verbose])
    run_flags.add_argument("--config", help="YAML file with settings that differ from the defaults")
    run_flags.add_argument("--output", help="output folder of the run (default: pipeline.output_dir, "
                                            "./watchnext_output)")
    return verbose, run_flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchnext", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    verbose, run_flags = _shared_flags()

    run = sub.add_parser("run", parents=[run_flags],
                         help="run the local TFX pipeline and push a blessed model")
    run.add_argument("--logs", help="folder of impression/event logs (default: simulate one), or the CSV "
                                     "file/glob of a data.source table config (sets data.table.path)")
    run.add_argument("--train-steps", type=int, help="override training.train_steps")
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser("backfill", parents=[run_flags],
                              help="run the daily job over a range of spans, in order, resumably")
    backfill.add_argument("--logs", required=True, help="folder of impression/event logs")
    backfill.add_argument("--from", dest="first", type=int, required=True,
                          help="first span, e.g. 20260101 (a number in data.span_format; hourly: 2026010100)")
    backfill.add_argument("--to", dest="last", type=int, required=True, help="last span, e.g. 20260107")
    backfill.add_argument("--train-steps", type=int, help="override training.train_steps")
    backfill.set_defaults(func=cmd_backfill)

    report = sub.add_parser("report", parents=[run_flags],
                            help="write and print the newest evaluation as Markdown")
    report.set_defaults(func=cmd_report)

    rank = sub.add_parser("rank", parents=[run_flags], help="rank a request's candidates with a served model")
    rank.add_argument("--request", required=True, help="request JSON file (- for stdin); see README")
    target = rank.add_mutually_exclusive_group()
    target.add_argument("--model", help="SavedModel directory (default: the newest pushed version)")
    target.add_argument("--grpc", metavar="HOST:PORT", help="TF Serving gRPC endpoint, e.g. localhost:8500")
    target.add_argument("--rest", metavar="URL", help="TF Serving REST endpoint, e.g. http://localhost:8501")
    rank.add_argument("--model-name", help="served model name (default: serving.model_name)")
    rank.add_argument("--top", type=int, help="print only the best K")
    rank.set_defaults(func=cmd_rank)

    check = sub.add_parser("check-serving", parents=[run_flags],
                           help="load a pushed model the way TF Serving does and compare its outputs")
    check.add_argument("--model", help="SavedModel directory (default: the newest pushed version)")
    check.add_argument("--examples", help="TFRecord glob of raw tf.Examples (default: the eval split)")
    check.add_argument("--count", type=int, default=256, help="how many examples to compare")
    check.set_defaults(func=cmd_check_serving)

    from watchnext.kubeflow.runner import add_arguments as add_kubeflow_arguments

    add_kubeflow_arguments(sub.add_parser("compile-kubeflow", parents=[verbose],
                                          help="compile the Kubeflow Pipelines v2 spec"))

    from watchnext.simulator.simulate import add_arguments

    simulate = sub.add_parser("simulate", parents=[verbose],
                              help="write simulated impression/event logs with ground truth")
    simulate.add_argument("--out", required=True, help="folder to write impressions/, events/, truth/ into")
    simulate.add_argument("--policy", metavar="MODEL_DIR",
                          help="rank the slates with this pushed SavedModel (default: the logging policy)")
    simulate.add_argument("--only-day", type=int, help="write only this day (0-based) of the run")
    simulate.add_argument("--config", help="YAML config (heads and score weights of --policy)")
    add_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

    experiment = sub.add_parser("experiment", parents=[verbose],
                                help="A/B test two pushed models on simulated live traffic")
    experiment.add_argument("--control", required=True, metavar="MODEL_DIR", help="the control's SavedModel")
    experiment.add_argument("--treatment", required=True, metavar="MODEL_DIR",
                            help="the treatment's SavedModel")
    experiment.add_argument("--days", type=int, help="simulated days of traffic (default 1)")
    experiment.add_argument("--requests-per-day", type=int,
                            help="requests a day over all arms (default 3000)")
    experiment.add_argument("--seed", type=int, help="seed of the traffic and the user split (default 0)")
    experiment.add_argument("--confidence", type=float,
                            help="confidence level of the intervals (default 0.95)")
    experiment.add_argument("--output", dest="report_dir",
                            help="folder for experiment.json/.md (default <pipeline.output_dir>/experiments)")
    experiment.add_argument("--config", help="YAML config: the simulated world the models were trained on, "
                                             "heads and score weights")
    experiment.set_defaults(func=cmd_experiment)

    loop = sub.add_parser("closed-loop", parents=[run_flags],
                          help="simulate days served by the newest pushed model, each followed by the "
                               "daily job (resumable)")
    loop.add_argument("--days", type=int, required=True, help="simulated days, e.g. 30")
    loop.add_argument("--train-steps", type=int, help="override training.train_steps")
    loop.set_defaults(func=cmd_closed_loop)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a user's mistake ends in one line on stderr and a documented exit status.

    Exit statuses (core/errors.py): 0 done, 1 a bug in watchnext (traceback in the log file,
    or on the console with -v), 2 bad usage, config, path or a busy output folder, 3 not
    blessed, 4 stopped by data validation, 5 unreadable input data or too many rejected records.
    """
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    _setup_logging(verbose)
    try:
        return args.func(args)
    except WatchnextError as e:
        if verbose:
            log.exception("watchnext: %s", type(e).__name__)
        else:
            log.error("watchnext: %s", type(e).__name__, exc_info=True, extra={_FILE_ONLY: True})
        print(f"watchnext: {_first_line(e)}", file=sys.stderr)
        return e.exit_code
    except FileNotFoundError as e:  # a path the user named; the message names it
        print(f"watchnext: {e}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt:
        print("watchnext: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: say where the traceback is rather than print 150 lines of it
        if verbose:
            raise
        log.error("watchnext: unexpected %s", type(e).__name__, exc_info=True, extra={_FILE_ONLY: True})
        where = f"the traceback is in {_LOG_FILES[-1]}" if _LOG_FILES else "rerun with -v for the traceback"
        print(f"watchnext: internal error: {type(e).__name__}: {_first_line(e)} ({where})", file=sys.stderr)
        return EXIT_INTERNAL


def _first_line(error: BaseException) -> str:
    """An error's message without the "[while running 'Stage']" lines Beam appends to it."""
    text = str(error).strip()
    return text.split(" [while running")[0].strip() or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
