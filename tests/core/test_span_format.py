"""data.span_format: span folder names per format, and the config key's validation."""

from __future__ import annotations

from watchnext.core import log_schema, span_format
from watchnext.core.config import ConfigError, load_config

import pytest


def test_the_default_is_the_schema_layout():
    assert span_format.log_pattern(log_schema.IMPRESSIONS_LOG) == log_schema.IMPRESSIONS_PATTERN
    assert span_format.log_pattern(log_schema.EVENTS_LOG) == log_schema.EVENTS_PATTERN
    assert span_format.span_dir() == log_schema.SPAN_DIR


@pytest.mark.parametrize(("fmt", "spec", "span", "folder"), [
    ("YYYYMMDD", "{SPAN:8}", 20260101, "span=20260101"),
    ("YYYYMMDDHH", "{SPAN:10}", 2026010113, "span=2026010113"),
    ("integer", "{SPAN}", 42, "span=42"),
    ("{SPAN:4}", "{SPAN:4}", 7, "span=0007"),
])
def test_formats_name_and_parse_span_folders(fmt, spec, span, folder):
    assert span_format.span_spec(fmt) == spec
    assert span_format.span_folder(span, fmt) == folder
    assert span_format.parse_span_folder(folder, fmt) == span
    assert span_format.parse_span_folder(span_format.example_folder(fmt), fmt) is not None


def test_folders_of_another_format_are_not_spans():
    assert span_format.parse_span_folder("span=2026010113", "YYYYMMDD") is None  # hourly under daily
    assert span_format.parse_span_folder("span=20260101", "YYYYMMDDHH") is None
    assert span_format.parse_span_folder("span=042", "integer") is None  # TFX would look for span=42
    assert span_format.parse_span_folder("span=0", "integer") == 0
    assert span_format.parse_span_folder("span=x1", "integer") is None
    assert span_format.parse_span_folder("other=1", "integer") is None
    assert span_format.parse_span_folder("span=99999999999", "integer") is None  # beyond int32
    with pytest.raises(ValueError, match="cannot be a span=YYYYMMDD folder"):
        span_format.span_folder(2026010113, "YYYYMMDD")


@pytest.mark.parametrize("bad", ["YYYY-MM-DD", "{SPAN:0}", "{SPAN:11}", "{YYYY}{MM}{DD}", "span={SPAN}", ""])
def test_a_bad_span_format_fails_at_config_load_naming_the_key(tmp_path, bad):
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  span_format: '{bad}'\n")
    with pytest.raises(ConfigError, match=r"config key data\.span_format: .* is not a span format"):
        load_config(str(path))


def test_good_span_formats_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  span_format: YYYYMMDDHH\n")
    assert load_config(str(path)).data.span_format == "YYYYMMDDHH"
    assert load_config(None, {"data": {"span_format": "{SPAN:6}"}}).data.span_format == "{SPAN:6}"
    assert load_config(None).data.span_format == "YYYYMMDD"
