"""The command line answers a user's mistakes at once, in one line, with a documented exit status."""

from __future__ import annotations

import json
import os
import re

from watchnext import cli
from watchnext.core import errors

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_a_config_typo_is_answered_before_tensorflow_is_imported(tmp_path, cli_in_fresh_process):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  train_stepz: 3\n")
    argv = ["run", "--config", str(bad), "--output", str(tmp_path / "o")]
    result = cli_in_fresh_process(argv, str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE
    assert result["heavy"] == []
    assert "training.train_stepz" in result["stderr"] and "did you mean 'train_steps'" in result["stderr"]
    assert "Traceback" not in result["stderr"]


@pytest.mark.parametrize("make_logs, message", [
    (lambda tmp: str(tmp / "missing"), "no such folder"),
    (lambda tmp: (tmp / "empty").mkdir() or str(tmp / "empty"), "no spans in"),
])
def test_missing_logs_are_answered_before_tensorflow_is_imported(tmp_path, make_logs, message,
                                                                 cli_in_fresh_process):
    logs = make_logs(tmp_path)
    result = cli_in_fresh_process(["run", "--logs", logs, "--output", str(tmp_path / "o")], str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE
    assert result["heavy"] == []
    assert message in result["stderr"] and logs in result["stderr"]


def test_a_feature_the_log_schema_lacks_and_a_declared_schema_without_logs_are_answered_at_once(
        tmp_path, cli_in_fresh_process):
    """Issue 17: names are checked against the declared log when the config loads."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("features:\n  numeric: [video_durration]\n  log1p_numeric: []\n")
    argv = ["run", "--config", str(bad), "--output", str(tmp_path / "o")]
    result = cli_in_fresh_process(argv, str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE and result["heavy"] == []
    assert "features.numeric" in result["stderr"] and "did you mean 'video_duration'" in result["stderr"]
    ratings = os.path.join(os.path.dirname(__file__), os.pardir, "configs", "item_ratings.yaml")
    argv = ["run", "--config", ratings, "--output", str(tmp_path / "o")]
    result = cli_in_fresh_process(argv, str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE and result["heavy"] == []
    assert "declares its own log_schema but no logs are given" in result["stderr"]


def test_a_busy_output_folder_is_refused_before_tensorflow_is_imported(tmp_path, cli_in_fresh_process):
    from watchnext.pipeline.output_lock import output_lock

    out = tmp_path / "o"
    with output_lock(str(out)):
        result = cli_in_fresh_process(["run", "--output", str(out)], str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE
    assert result["heavy"] == []
    assert f"pid {os.getpid()}" in result["stderr"] and "another watchnext run" in result["stderr"]


def test_simulate_does_not_import_tensorflow(tmp_path, cli_in_fresh_process):
    argv = ["simulate", "--out", str(tmp_path / "logs"), "--impressions-per-day", "50"]
    result = cli_in_fresh_process(argv, str(tmp_path))
    assert result["status"] == errors.EXIT_OK
    assert result["heavy"] == []
    assert os.path.isdir(tmp_path / "logs" / "impressions")


def test_verbose_is_accepted_after_the_subcommand():
    parser = cli.build_parser()
    assert parser.parse_args(["run", "-v"]).verbose is True
    assert parser.parse_args(["-v", "run"]).verbose is True
    assert getattr(parser.parse_args(["run"]), "verbose", False) is False


@pytest.mark.parametrize("error, status", [
    (errors.UsageError("bad flag"), errors.EXIT_USAGE),
    (errors.BadInputData("events/span=1/part-0.jsonl.gz is truncated"), errors.EXIT_BAD_INPUT),
    (errors.TooManyRejected("2% of records rejected"), errors.EXIT_BAD_INPUT),
    (errors.DataValidationFailed("click drifted"), errors.EXIT_DATA_VALIDATION),
])
def test_each_failure_class_ends_in_one_line_and_its_exit_status(monkeypatch, capsys, error, status):
    def fail(args):
        # As Beam re-raises an error from inside a pipeline: same type, stage appended.
        raise type(error)(f"{error} [while running 'ReadLogs/Parse']")

    monkeypatch.setattr(cli, "cmd_report", fail)
    assert cli.main(["report", "--output", "unused"]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"watchnext: {error}"]


def test_a_bug_names_the_log_file_instead_of_printing_a_traceback(monkeypatch, capsys, tmp_path):
    def bug(args):
        cli._log_to_file(str(tmp_path), "report")
        raise KeyError("oops")

    monkeypatch.setattr(cli, "cmd_report", bug)
    monkeypatch.setattr(cli, "_LOG_FILES", [])
    assert cli.main(["report"]) == errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error: KeyError" in err
    (log_file,) = cli._LOG_FILES
    assert log_file.startswith(str(tmp_path / "logs"))
    with open(log_file, encoding="utf-8") as f:
        assert "Traceback" in f.read()


def test_the_console_shows_watchnext_lines_and_library_errors_only():
    console = cli._ConsoleFilter()

    def record(name: str, level: int) -> object:
        import logging

        return logging.LogRecord(name, level, __file__, 1, "message", (), None)

    assert console.filter(record("watchnext.pipeline.local_runner", 20))
    assert not console.filter(record("absl", 30))  # e.g. "custom_executor_spec is deprecated"
    assert not console.filter(record("apache_beam.transforms.util", 20))  # BatchElements statistics
    assert not console.filter(record("absl", 40))  # logged, then raised: main prints it once
    assert console.filter(record("absl", 50))


def test_the_readme_lists_every_exit_status():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    codes = {name: value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    for name, value in codes.items():
        assert re.search(rf"\b{value}\b", text), f"README does not mention exit status {value} ({name})"


@pytest.mark.slow
def test_a_truncated_log_file_ends_in_one_line_naming_it_and_status_5(tmp_path, capsys):
    """Through the real pipeline: Beam re-raises the reader's error, and main prints it once."""
    import glob

    logs = tmp_path / "logs"
    assert cli.main(["simulate", "--out", str(logs), "--impressions-per-day", "200"]) == 0
    victim = sorted(glob.glob(str(logs / "impressions" / "span=*" / "*.jsonl.gz")))[1]
    with open(victim, "rb") as f:
        data = f.read()
    with open(victim, "wb") as f:
        f.write(data[: len(data) // 2])
    capsys.readouterr()
    assert cli.main(["run", "--logs", str(logs), "--output", str(tmp_path / "out")]) == errors.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"watchnext: {victim}: truncated"), err
    assert err.count(": truncated:") == 1, err  # said once, not once per library that saw it


@pytest.mark.slow
def test_a_table_that_is_not_parquet_ends_in_one_line_naming_it_and_status_5(tmp_path, capsys):
    """Through the real pipeline: a table named .parquet that is not Parquet is unreadable input (5)."""
    table = tmp_path / "census.parquet"
    table.write_bytes(b"age,income\n40,- 50000.\n")
    census = os.path.join(os.path.dirname(__file__), os.pardir, "configs", "census_income.yaml")
    capsys.readouterr()
    status = cli.main(["run", "--config", census, "--logs", str(table), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == errors.EXIT_BAD_INPUT, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"watchnext: {table}: cannot be read as Parquet"), err


@pytest.mark.slow
def test_a_finished_run_ends_with_the_summary(pipeline_runs, tmp_path, capsys):
    """`watchnext run` over the shared run's copy (every component cached): the summary comes last."""
    import shutil

    import yaml

    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message  # the copy holds a served model to compare with
    out = str(tmp_path / "continued")
    shutil.copytree(config.pipeline.output_dir, out)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(json.loads(config.to_json())))
    logs = os.path.join(config.pipeline.output_dir, "simulated_logs")  # the same logs: cache hits
    capsys.readouterr()
    status = cli.main(["run", "--config", str(config_file), "--output", out, "--logs", logs])
    captured = capsys.readouterr()
    assert status == errors.EXIT_OK, captured.err
    assert "── summary" in captured.err and "verdict: blessed" in captured.err
    for head in config.head_names:
        assert f"  {head} " in captured.err
    # The suggested commands carry the run's config (its model name and features).
    assert (f"watchnext rank --request serving/sample_request.json --config {config_file} --output {out}"
            in captured.err)
    assert "tensorboard --logdir " in captured.err
    assert os.listdir(os.path.join(out, "logs"))  # the run's log file


def test_span_format_mistakes_are_answered_before_the_run(tmp_path, monkeypatch):
    from watchnext.core.config import load_config

    monkeypatch.setattr(cli, "_log_to_file", lambda output_dir, command: "")  # no root log handler

    def config(**data):
        return load_config(None, {"pipeline": {"output_dir": str(tmp_path / "o")}, "data": data})

    # The simulator writes daily spans only: another format needs the user's logs.
    with pytest.raises(errors.UsageError, match=r"data\.span_format: 'YYYYMMDDHH', but no logs are given"):
        cli._check_inputs(config(span_format="YYYYMMDDHH"), "run")
    hourly = tmp_path / "logs" / "impressions" / "span=2026010113"
    hourly.mkdir(parents=True)
    with pytest.raises(errors.UsageError, match=r"no spans in .*span=YYYYMMDD\); found span=2026010113"):
        cli._check_inputs(config(logs_dir=str(tmp_path / "logs")), "run")
    assert cli._check_inputs(config(logs_dir=str(tmp_path / "logs"), span_format="YYYYMMDDHH"), "run")
