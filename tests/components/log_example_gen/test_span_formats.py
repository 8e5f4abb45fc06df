"""data.span_format through LogExampleGen: hourly (YYYYMMDDHH) and integer span folders are
found, the newest is picked, and they ingest; folders of another format fail naming the key."""

from __future__ import annotations

import json
import os

from watchnext.components.example_gen.artifacts import RejectedRecords
from watchnext.components.log_example_gen import make_log_example_gen
from watchnext.components.log_example_gen.executor import Executor
from watchnext.components.log_example_gen.layout import no_spans_message, spans_on_disk

import pytest
from tfx.types import standard_artifacts

# Hourly spans across midnight; integer spans whose text order is not their number order.
HOURLY = (2026010122, 2026010123, 2026010200)
INTEGER = (9, 10, 11)


def _write(tiny, logs: str, spans: tuple[int, ...]) -> None:
    """Three clean impressions of one request and a click, per span."""
    good = [tiny.line(tiny.impression("r1", c, i)) for i, c in enumerate("abc")]
    for span in spans:
        tiny.write_logs(logs, span, impressions=good, events=[tiny.line(tiny.event("r1", "b", "click"))])


@pytest.mark.parametrize(("fmt", "spans"), [("YYYYMMDDHH", HOURLY), ("integer", INTEGER)])
def test_the_newest_span_of_another_format_is_picked(tmp_path, tiny, resolve, fmt, spans):
    logs = str(tmp_path / "logs")
    _write(tiny, logs, spans)
    assert spans_on_disk(logs, fmt) == list(spans)
    props = resolve(make_log_example_gen(logs, 20, 0.01, span_format=fmt))
    assert props["span"] == spans[-1]
    assert f"impressions/span={spans[-1]}/*" in props["input_config"]
    assert f"events/span={{SPAN{':10' if fmt == 'YYYYMMDDHH' else ''}}}/*" == props["events_pattern"]
    assert resolve(make_log_example_gen(logs, 20, 0.01, span=spans[0], span_format=fmt))["span"] == spans[0]


@pytest.mark.parametrize(("fmt", "spans"), [("YYYYMMDDHH", HOURLY), ("integer", INTEGER)])
def test_a_span_of_another_format_ingests(tmp_path, tiny, resolve, fmt, spans):
    logs = str(tmp_path / "logs")
    _write(tiny, logs, spans)
    examples, rejected = standard_artifacts.Examples(), RejectedRecords()
    examples.uri, rejected.uri = str(tmp_path / "examples"), str(tmp_path / "rejected")
    props = resolve(make_log_example_gen(logs, 50, 0.0, span_format=fmt))
    Executor().Do({}, {"examples": [examples], "rejected": [rejected]}, props)
    with open(os.path.join(rejected.uri, "counts.json")) as f:
        counts = json.load(f)
    assert counts["examples"]["total"] == 3 and counts["events"]["merged"] == 1
    assert all(f"span={spans[-1]}" in p for p in counts["files"]["impressions"] + counts["files"]["events"])
    assert rejected.mlmd_artifact.custom_properties["span"].int_value == spans[-1]


def test_hourly_folders_under_the_daily_default_fail_naming_the_key(tmp_path, tiny, resolve):
    logs = str(tmp_path / "logs")
    _write(tiny, logs, (20260101, 2026010113))
    with pytest.raises(ValueError, match=r"span folders that do not match .*span=2026010113 in .*impressions"
                                         r".*data\.span_format"):
        resolve(make_log_example_gen(logs, 20, 0.01))
    assert spans_on_disk(logs) == [20260101]  # the listing names the daily one only


def test_no_spans_names_the_format_and_the_folders_found(tmp_path, tiny):
    logs = str(tmp_path / "logs")
    _write(tiny, logs, HOURLY)
    assert spans_on_disk(logs) == []
    message = no_spans_message(logs, "YYYYMMDD")
    assert "impressions/span=20260101" in message and "data.span_format 'YYYYMMDD': span=YYYYMMDD" in message
    assert "found span=2026010122, span=2026010123, span=2026010200, another format" in message
    assert "span=2026010100 (data.span_format 'YYYYMMDDHH'" in no_spans_message(str(tmp_path), "YYYYMMDDHH")


def test_a_span_the_format_cannot_name_is_refused():
    with pytest.raises(ValueError, match="span 20260101 cannot be a span=YYYYMMDDHH folder"):
        make_log_example_gen("/logs", 20, 0.01, span=20260101, span_format="YYYYMMDDHH")
    # Hours are zero-padded as TFX pads {SPAN:10}: span 2026010100 is hour 00.
    gen = make_log_example_gen("/logs", 20, 0.01, span=2026010100, span_format="YYYYMMDDHH")
    assert "2026010100" in str(gen.exec_properties["range_config"])


@pytest.mark.slow
def test_a_window_of_two_hourly_spans_ingests_the_older_one(tmp_path, tiny):
    from watchnext.core.config import load_config
    from watchnext.pipeline.local_runner import RunPaths, ingest_window
    from watchnext.pipeline.metadata import ingested_spans
    from watchnext.pipeline.spans import RollingWindowStrategy

    logs = str(tmp_path / "logs")
    _write(tiny, logs, HOURLY)
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")},
                                "data": {"logs_dir": logs, "window_spans": 2, "span_format": "YYYYMMDDHH"}})
    paths = RunPaths(config.pipeline.output_dir)
    # The newest two are 23h and the next day's 00h (spans compare as numbers, not dates).
    assert ingest_window(config, logs, paths) == [HOURLY[1]]
    assert ingested_spans(paths.metadata_path) == {HOURLY[1]}
    assert ingest_window(config, logs, paths, newest=HOURLY[1]) == [HOURLY[0]]
    by_span = {s: f"examples of {s}" for s in HOURLY}
    assert RollingWindowStrategy(2).choose(by_span, HOURLY[2]) == ["examples of 2026010200",
                                                                   "examples of 2026010123"]
