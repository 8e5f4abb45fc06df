"""Joining one impression with its events into labels, without Beam.

Everything here is a pure function over the records of one (request_id,
candidate_video_id) key, so the label rules can be read and tested in isolation;
transforms.py only groups the records by key and calls `join_key`.

Label rules (the LogSchema's `labels`; for the default schema, schema.LABEL_FIELDS): click,
like and dismiss are 1 when at least one such
event exists; watch_time sums the watch events' seconds; rating is the latest survey's
value (latest by timestamp, then by file and line) and rating_present flags it. A click
is not implied by a watch: a watch without a click is kept as is and counted
(`examples.watch_without_click`) so that a log that never records clicks shows up.

Accounting: every impression read becomes one example or one rejected record; every
event read is either merged into an example (counted as `events.merged`, including a
survey superseded by a later one) or rejected with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from watchnext.core import log_schema as schema
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LabelRule, LogSchema
from watchnext.core.records import Invalid, rejection

# One record as it travels to the join: where it came from and its clean fields
# (None for an impression that was rejected while parsing: a tombstone, so that its
# events are reported as belonging to a rejected impression rather than as orphans).
Located = tuple[str, int, "dict[str, Any] | None"]


@dataclass
class JoinResult:
    """What one key produced: at most one example's features, rejections, count keys."""

    features: dict[str, Any] | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)


def counter_name(log: str, what: str, detail: str = "") -> str:
    """`impressions.read`, `events.rejected.orphan_event`, `events.merged.click`, …"""
    return f"{log}.{what}.{detail}" if detail else f"{log}.{what}"


def _raw(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)


def join_key(impressions: list[Located], events: list[Located], log_schema: LogSchema = DEFAULT_LOG_SCHEMA
             ) -> JoinResult:
    """Resolve duplicates, match events to the impression and compute its labels."""
    out = JoinResult()
    impression, state = _pick_impression(sorted(impressions, key=lambda r: (r[0], r[1])), out)
    seen: set[tuple[Any, ...]] = set()
    kept: list[tuple[str, int, dict[str, Any]]] = []
    for source, line, event in sorted(events, key=lambda r: (r[0], r[1])):
        assert event is not None  # events rejected while parsing never reach the join
        identity = (event["event"], event["timestamp"], event["value"])
        if identity in seen:
            _reject_event(out, source, line, event, schema.DUPLICATE_EVENT, "an exact copy was read first")
            continue
        seen.add(identity)
        kept.append((source, line, event))
    if impression is None:
        reason = schema.EVENT_OF_REJECTED_IMPRESSION if state == "rejected" else schema.ORPHAN_EVENT
        detail = "its impression was rejected" if state == "rejected" else "no impression has this key"
        for source, line, event in kept:
            _reject_event(out, source, line, event, reason, detail)
        return out
    # The default schema only: a watch longer than 10× the video is a logging bug.
    limit = (schema.MAX_WATCH_DURATION_RATIO * impression["video_duration"] if log_schema.is_default
             else float("inf"))
    merged = []
    for source, line, event in kept:
        if event["event"] == schema.WATCH_EVENT and event["value"] > limit:
            _reject_event(out, source, line, event, schema.WATCH_EXCEEDS_DURATION,
                          f"{event['value']} s > {schema.MAX_WATCH_DURATION_RATIO:g} × "
                          f"video_duration {impression['video_duration']} s")
            continue
        merged.append((source, line, event))
        out.counts += [counter_name(schema.EVENTS_LOG, "merged"),
                       counter_name(schema.EVENTS_LOG, "merged", event["event"])]
    out.features = {**impression, **labels(merged, log_schema, impression)}
    if log_schema.is_default and out.features[schema.WATCH_TIME] > 0 and not out.features[schema.CLICK]:
        out.counts.append("examples.watch_without_click")
    return out


def _pick_impression(impressions: list[Located], out: JoinResult) -> tuple[dict[str, Any] | None, str]:
    """The one valid impression of a key, or None and 'absent' / 'rejected'."""
    valid = [(s, ln, r) for s, ln, r in impressions if r is not None]
    if not valid:
        return None, "rejected" if impressions else "absent"
    first = valid[0][2]
    if all(r == first for _, _, r in valid[1:]):
        for source, line, record in valid[1:]:
            out.rejected.append(rejection(schema.IMPRESSIONS_LOG, source, line, Invalid(
                schema.DUPLICATE_IMPRESSION, "", f"exact copy of {valid[0][0]}:{valid[0][1]}"), _raw(record)))
        return first, "ok"
    where = ", ".join(f"{s}:{ln}" for s, ln, _ in valid)
    for source, line, record in valid:
        out.rejected.append(rejection(schema.IMPRESSIONS_LOG, source, line, Invalid(
            schema.CONFLICTING_IMPRESSION, "", f"differing impressions with this key at {where}"),
            _raw(record)))
    return None, "rejected"


def _reject_event(out: JoinResult, source: str, line: int, event: dict[str, Any], reason: str,
                  detail: str) -> None:
    field_name = "value" if reason == schema.WATCH_EXCEEDS_DURATION else ""
    out.rejected.append(rejection(schema.EVENTS_LOG, source, line, Invalid(reason, field_name, detail),
                                  _raw(event)))


def labels(events: list[tuple[str, int, dict[str, Any]]], log_schema: LogSchema = DEFAULT_LOG_SCHEMA,
           impression: dict[str, Any] | None = None) -> dict[str, Any]:
    """The label features of one impression from its (deduplicated, valid) events and, for
    `field` rules, its own fields."""
    fields = set(log_schema.field_names)  # a label named like its field is that field, as read
    return {rule.name: _label(rule, events, log_schema, impression or {}) for rule in log_schema.labels
            if rule.name not in fields}


def _label(rule: LabelRule, events: list[tuple[str, int, dict[str, Any]]], log_schema: LogSchema,
           impression: dict[str, Any]) -> Any:
    if rule.rule == "field":
        value = impression.get(rule.field)
        if value is None:  # an optional field the record lacks
            f = log_schema.impression_field(rule.field)
            value = f.fill_value if f is not None else 0.0
        return int(value >= rule.threshold) if rule.threshold is not None else float(value)
    mine = [(e["timestamp"], s, ln, e["value"]) for s, ln, e in events if e["event"] == rule.event]
    if rule.rule == "any":
        return int(bool(mine))
    if rule.rule == "sum":
        return float(sum(v for _, _, _, v in mine))
    return float(sorted(mine)[-1][3]) if mine else 0.0  # last: by timestamp, then file and line


def to_example(features: dict[str, Any], log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> Any:
    """A tf.train.Example with every impression field and label, typed by the schema (a missing
    optional field holds its `fill_value`)."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    feature = example.features.feature
    # Filling the message in place is about twice as fast as building Feature objects.
    for f in log_schema.example_fields():
        value = features[f.name]
        if value is None:
            value = f.fill_value
        if f.type == "string":
            feature[f.name].bytes_list.value.append(value.encode())
        elif f.type == "string_list":
            values = feature[f.name].bytes_list
            values.SetInParent()  # an empty history is still a (zero-length) bytes_list
            values.value.extend([v.encode() for v in value])
        elif f.type == "int":
            feature[f.name].int64_list.value.append(value)
        else:
            feature[f.name].float_list.value.append(value)
    return example
