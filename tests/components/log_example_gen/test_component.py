"""LogExampleGen's component and driver: span selection, patterns, helpers."""

from __future__ import annotations

import os

from watchnext.components.log_example_gen import (
    LogExampleGen,
    make_log_example_gen,
    make_output_config,
)
from watchnext.core import log_schema as schema

import pytest
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils


@pytest.fixture
def three_spans(tmp_path, tiny) -> str:
    logs = str(tmp_path / "logs")
    for span in (20260101, 20260102, 20260103):
        tiny.write_logs(logs, span)
    return logs


def test_latest_span_by_default(three_spans, resolve):
    props = resolve(make_log_example_gen(three_spans, eval_percent=20, max_rejected_fraction=0.01))
    assert props["span"] == 20260103
    assert "impressions/span=20260103/*" in props["input_config"]
    assert props["input_fingerprint"].count("split:") == 2  # impressions and events fingerprinted


def test_static_range_picks_a_span(three_spans, resolve):
    props = resolve(make_log_example_gen(three_spans, 20, 0.01, span=20260102))
    assert props["span"] == 20260102
    assert "impressions/span=20260102/*" in props["input_config"]


def test_missing_span_or_missing_events_fail_clearly(three_spans, resolve):
    with pytest.raises(FileNotFoundError, match=r"span 20251231 has no impression files .*no events files"):
        resolve(make_log_example_gen(three_spans, 20, 0.01, span=20251231))
    for name in os.listdir(os.path.join(three_spans, "events", "span=20260103")):
        os.remove(os.path.join(three_spans, "events", "span=20260103", name))
    with pytest.raises(FileNotFoundError, match="span 20260103 has impressions but no events"):
        resolve(make_log_example_gen(three_spans, 20, 0.01))


def test_span_with_only_events_fails_naming_the_span(three_spans, tiny, resolve):
    # Events of 20260104 have landed, its impressions have not: TFX alone would not see the
    # span and would ingest 20260103 again (latest) or fail with "Cannot find matching" (static).
    events_only = os.path.join(three_spans, "events_only")
    tiny.write_logs(events_only, 20260104)
    os.rename(os.path.join(events_only, "events", "span=20260104"),
              os.path.join(three_spans, "events", "span=20260104"))
    message = r"span 20260104 has no impression files \(nothing matches .*span=20260104/\*\); only its events"
    with pytest.raises(FileNotFoundError, match=message + ".*newest span with impressions is 20260103"):
        resolve(make_log_example_gen(three_spans, 20, 0.01))
    with pytest.raises(FileNotFoundError, match=message):
        resolve(make_log_example_gen(three_spans, 20, 0.01, span=20260104))
    assert resolve(make_log_example_gen(three_spans, 20, 0.01, span=20260103))["span"] == 20260103


def test_empty_span_folder_fails_naming_the_span(three_spans, resolve):
    # A span folder with no files (a copy not started, or failed): refused, not skipped.
    os.makedirs(os.path.join(three_spans, "impressions", "span=20260104"))
    message = r"span 20260104 has no impression files \(its folder .*span=20260104 is empty\); it has no ev"
    with pytest.raises(FileNotFoundError, match=message):
        resolve(make_log_example_gen(three_spans, 20, 0.01))
    with pytest.raises(FileNotFoundError, match=message):
        resolve(make_log_example_gen(three_spans, 20, 0.01, span=20260104))


def test_component_wiring():
    gen = make_log_example_gen("/logs", eval_percent=25, max_rejected_fraction=0.05)
    assert set(gen.outputs) == {"examples", "rejected"}
    assert gen.outputs["rejected"].type_name == "watchnext.RejectedRecords"
    assert gen.exec_properties["events_pattern"] == schema.EVENTS_PATTERN
    assert gen.exec_properties["max_rejected_fraction"] == 0.05
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(gen.exec_properties["output_config"], output_config)
    split = output_config.split_config
    assert [(s.name, s.hash_buckets) for s in split.splits] == [("train", 75), ("eval", 25)]
    assert split.partition_feature_name == "request_id"


@pytest.mark.parametrize("kwargs, match", [
    ({"events_pattern": "events/*"}, "same"),
    ({"max_rejected_fraction": 1.5}, "max_rejected_fraction"),
    ({"max_position": 0}, "max_position"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LogExampleGen(input_base="/logs", **kwargs)


def test_bad_helper_arguments():
    with pytest.raises(ValueError, match="eval_percent"):
        make_output_config(0)
    with pytest.raises(ValueError, match="span"):
        make_log_example_gen("/logs", 20, 0.01, span="20260101")
    assert isinstance(make_output_config(10), example_gen_pb2.Output)
