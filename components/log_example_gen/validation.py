"""Checking one decoded log record against its schema (schema.py): the clean record, or why not.

The per-record path of LogExampleGen (and the reference the vectorised path in columnar.py
must agree with). Fields not in the schema are ignored; the first problem found is reported
as an `Invalid` with its reason code (schema.REJECTION_REASONS).
"""

from __future__ import annotations

import math
from typing import Any

from watchnext.core.log_schema import (
    ABSURD_WATCH_TIME,
    EVENT_FIELDS,
    MAX_POSITION,
    MAX_RATING,
    MAX_WATCH_SECONDS,
    MIN_RATING,
    MISSING_FIELD,
    MISSING_VALUE,
    NON_FINITE,
    NOT_AN_OBJECT,
    OUT_OF_RANGE,
    SURVEY_EVENT,
    WATCH_EVENT,
    WRONG_TYPE,
    Field,
)
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LogSchema
from watchnext.core.records import Invalid


def _coerce(f: Field, value: Any) -> tuple[Any, Invalid | None]:
    """Type-check and convert one value; integral floats are accepted for int fields
    (some JSON writers emit 5.0 for 5), bools never count as numbers."""
    if f.type == "string":
        if not isinstance(value, str):
            return None, Invalid(WRONG_TYPE, f.name, f"expected a string, got {type(value).__name__}")
        return value, None
    if f.type == "string_list":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return None, Invalid(WRONG_TYPE, f.name, "expected a list of strings")
        return [str(v) for v in value], None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, Invalid(WRONG_TYPE, f.name, f"expected a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        return None, Invalid(NON_FINITE, f.name, f"{value}")
    if f.type == "int":
        if isinstance(value, float):
            if not value.is_integer():
                return None, Invalid(WRONG_TYPE, f.name, f"expected an integer, got {value}")
        return int(value), None
    return float(value), None


def _check_bounds(f: Field, value: Any) -> Invalid | None:
    if f.allowed and value not in f.allowed:
        return Invalid(f.unknown_reason, f.name, f"{value!r} is not one of {', '.join(f.allowed)}")
    if f.type == "string" and not f.allowed and value == "":
        return Invalid(OUT_OF_RANGE, f.name, "empty string")
    if f.minimum is not None and (value <= f.minimum if f.exclusive_minimum else value < f.minimum):
        return Invalid(OUT_OF_RANGE, f.name, f"{value} is not {f.constraint}")
    if f.maximum is not None and value > f.maximum:
        return Invalid(OUT_OF_RANGE, f.name, f"{value} is not {f.constraint}")
    if f.max_items is not None and len(value) > f.max_items:
        return Invalid(OUT_OF_RANGE, f.name, f"{len(value)} items, at most {f.max_items} allowed")
    return None


def validate_record(raw: Any, fields: tuple[Field, ...]) -> tuple[dict[str, Any] | None, Invalid | None]:
    """Check one decoded record against `fields`: (clean record, None) or (None, why).

    Fields not in the schema are ignored (logs may carry more than the model needs);
    a missing optional field becomes None. The first problem found is reported.
    """
    if not isinstance(raw, dict):
        return None, Invalid(NOT_AN_OBJECT, "", f"a JSON {type(raw).__name__}, not an object")
    clean: dict[str, Any] = {}
    for f in fields:
        value = raw.get(f.name)
        if value is None:
            if f.required:
                return None, Invalid(MISSING_FIELD, f.name, "absent or null")
            clean[f.name] = None
            continue
        value, invalid = _coerce(f, value)
        if invalid is None:
            invalid = _check_bounds(f, value)
        if invalid is not None:
            return None, invalid
        clean[f.name] = value
    return clean, None


def validate_impression(raw: Any, max_position: int = MAX_POSITION, log_schema: LogSchema = DEFAULT_LOG_SCHEMA
                        ) -> tuple[dict | None, Invalid | None]:
    """An impression record → (clean record, None) or (None, why). Positions ≥ max_position
    are out of range (the position feature's vocabulary is 0..max_position-1). A missing
    optional field is None in the clean record (to_example writes its `fill_value`)."""
    record, invalid = validate_record(raw, log_schema.impressions)
    position = log_schema.position
    if record is not None and position and record[position] is not None and record[position] >= max_position:
        return None, Invalid(OUT_OF_RANGE, position, f"{record[position]} is not < {max_position}")
    return record, invalid


def validate_event(raw: Any, log_schema: LogSchema = DEFAULT_LOG_SCHEMA
                   ) -> tuple[dict | None, Invalid | None]:
    """An event record → (clean record, None) or (None, why).

    `value` is required for the events a sum or last label reads, and ignored (set to None)
    for the others. The default schema also bounds them: watch (seconds, 0 ≤ v ≤ 24 h) and
    survey (rating 1–5); the bound relative to the video's duration needs the impression and
    is checked by the join.
    """
    if not log_schema.is_default:
        return _validate_declared_event(raw, log_schema)
    record, invalid = validate_record(raw, EVENT_FIELDS)
    if record is None:
        return None, invalid
    kind, value = record["event"], record["value"]
    if kind not in (WATCH_EVENT, SURVEY_EVENT):
        record["value"] = None
        return record, None
    if value is None:
        return None, Invalid(MISSING_VALUE, "value", f"a {kind} event needs a value")
    if kind == WATCH_EVENT:
        if value < 0:
            return None, Invalid(OUT_OF_RANGE, "value", f"negative watch time {value}")
        if value > MAX_WATCH_SECONDS:
            return None, Invalid(ABSURD_WATCH_TIME, "value", f"{value} s is more than 24 h")
    elif not MIN_RATING <= value <= MAX_RATING:
        return None, Invalid(OUT_OF_RANGE, "value", f"rating {value} is not in [{MIN_RATING}, {MAX_RATING}]")
    return record, None


def _validate_declared_event(raw: Any, log_schema: LogSchema) -> tuple[dict | None, Invalid | None]:
    """validate_event for a declared schema: the value is needed only by sum and last labels."""
    record, invalid = validate_record(raw, log_schema.event_fields)
    if record is None:
        return None, invalid
    valued = {rule.event for rule in log_schema.labels if rule.needs_value}
    if record["event"] not in valued:
        record["value"] = None
    elif record["value"] is None:
        return None, Invalid(MISSING_VALUE, "value", f"a {record['event']} event needs a value")
    return record, None
