"""The log schema: one definition drives validation, example types and the README table."""

from __future__ import annotations

import math

from watchnext.components.log_example_gen import join, reading, validation
from watchnext.core import log_schema as schema
from watchnext.core.config import Config

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def test_label_names_match_the_config_heads():
    assert set(schema.LABELS) == set(Config().label_keys)


def test_example_feature_types_cover_impressions_and_labels():
    types = schema.example_feature_types()
    assert list(types) == [f.name for f in schema.IMPRESSION_FIELDS + schema.LABEL_FIELDS]
    assert types["watch_history"] == "bytes" and types["position"] == "int64"
    assert types["watch_time"] == "float" and types["click"] == "int64"
    assert schema.MAX_POSITION == Config().features.max_position


def test_markdown_table_lists_every_field_once():
    table = schema.markdown_table(schema.IMPRESSIONS_LOG)
    rows = table.splitlines()[2:]
    assert len(rows) == len(schema.IMPRESSION_FIELDS)
    for f, row in zip(schema.IMPRESSION_FIELDS, rows, strict=True):
        assert row.startswith(f"| `{f.name}` |") and row.count(" | ") == 4  # '|' inside cells escaped
    full = schema.markdown_schema()
    for reason in schema.REJECTION_REASONS:
        assert f"`{reason}`" in full


def test_valid_impression_is_cleaned(tiny):
    raw = tiny.impression("r", "c", 3, timestamp=7.0, extra="kept out")
    record, invalid = validation.validate_impression(raw)
    assert invalid is None
    assert record["timestamp"] == 7 and isinstance(record["timestamp"], int)
    assert isinstance(record["video_duration"], float) and "extra" not in record


@pytest.mark.parametrize("changes, reason, field", [
    ({"user_id": None}, schema.MISSING_FIELD, "user_id"),
    ({"position": "1"}, schema.WRONG_TYPE, "position"),
    ({"position": True}, schema.WRONG_TYPE, "position"),
    ({"timestamp": 1.5}, schema.WRONG_TYPE, "timestamp"),
    ({"video_duration": math.inf}, schema.NON_FINITE, "video_duration"),
    ({"video_duration": 0.0}, schema.OUT_OF_RANGE, "video_duration"),
    ({"position": 20}, schema.OUT_OF_RANGE, "position"),
    ({"user_activity": -1.0}, schema.OUT_OF_RANGE, "user_activity"),
    ({"device": "fridge"}, schema.UNKNOWN_DEVICE, "device"),
    ({"request_id": ""}, schema.OUT_OF_RANGE, "request_id"),
    ({"watch_history": ["a"] * 21}, schema.OUT_OF_RANGE, "watch_history"),
    ({"watch_history": ["a", 3]}, schema.WRONG_TYPE, "watch_history"),
])
def test_invalid_impressions_name_reason_and_field(tiny, changes, reason, field):
    record, invalid = validation.validate_impression(tiny.impression("r", "c", **changes))
    assert record is None and (invalid.reason, invalid.field) == (reason, field)


def test_max_position_is_configurable(tiny):
    invalid = validation.validate_impression(tiny.impression("r", "c", 5), max_position=5)[1]
    assert invalid.reason == "out_of_range"
    assert validation.validate_impression(tiny.impression("r", "c", 4), max_position=5)[1] is None


@pytest.mark.parametrize("kind, value, reason", [
    ("share", None, schema.UNKNOWN_EVENT),
    ("watch", None, schema.MISSING_VALUE),
    ("watch", -1.0, schema.OUT_OF_RANGE),
    ("watch", 86401.0, schema.ABSURD_WATCH_TIME),
    ("survey", 0.5, schema.OUT_OF_RANGE),
    ("survey", math.nan, schema.NON_FINITE),
    ("watch", "10", schema.WRONG_TYPE),
])
def test_invalid_events(tiny, kind, value, reason):
    record, invalid = validation.validate_event(tiny.event("r", "c", kind, value))
    assert record is None and invalid.reason == reason


def test_value_is_ignored_for_events_without_one(tiny):
    record, invalid = validation.validate_event(tiny.event("r", "c", "like", 3.0))
    assert invalid is None and record["value"] is None
    assert validation.validate_record([1], schema.EVENT_FIELDS)[1].reason == schema.NOT_AN_OBJECT


def _read(path: str) -> list:
    return [record for _, record in reading.read_log_file(path)]


def test_schema_drift_new_column_is_ignored(tiny, tmp_path):
    # A writer starts emitting columns the schema does not know (Parquet and JSON Lines):
    # every record is still accepted and no example carries the new column.
    imp_path, ev_path = str(tmp_path / "imp.parquet"), tmp_path / "ev.jsonl"
    pq.write_table(pa.Table.from_pylist([tiny.impression("r", "c", 0, experiment_arm="B")]), imp_path)
    ev_path.write_text(tiny.line({**tiny.event("r", "c", "click"), "client": "ios"}) + "\n")
    [impression] = _read(imp_path)
    [event] = [reading.decode(payload)[0] for payload in _read(str(ev_path))]
    record, invalid = validation.validate_impression(impression)
    clicked, invalid_event = validation.validate_event(event)
    assert invalid is None and invalid_event is None
    result = join.join_key([("i", 1, record)], [("e", 1, clicked)])
    feature = join.to_example(result.features).features.feature
    assert set(feature) == set(schema.example_feature_types())  # no experiment_arm, no client
    assert feature["click"].int64_list.value == [1] and result.rejected == []


def test_schema_drift_dropped_optional_column(tiny, tmp_path):
    # The events writer stops emitting `value` (optional): events that need none are accepted,
    # watches and surveys are refused as missing_value naming the field.
    path = str(tmp_path / "ev.parquet")
    events = [tiny.event("r", "c", kind, 30.0) for kind in ("click", "like", "watch", "survey")]
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in e.items() if k != "value"} for e in events]), path)
    results = [validation.validate_event(raw) for raw in _read(path)]
    assert [(r is not None and r["value"] is None, i and (i.reason, i.field)) for r, i in results] == [
        (True, None), (True, None),
        (False, (schema.MISSING_VALUE, "value")), (False, (schema.MISSING_VALUE, "value"))]
