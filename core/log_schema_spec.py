"""A declared log schema: the impression fields, the event types and how each label is derived.

`LogSchema` is the contract between a user's logs and LogExampleGen, as data: the config's
`log_schema` section (core/config/logs.py) is one, and LogExampleGen receives it as JSON. The
shipped default, `DEFAULT_LOG_SCHEMA`, is exactly the YouTube-shaped schema of log_schema.py
(its IMPRESSION_FIELDS, EVENT_FIELDS and LABEL_FIELDS), so a config that does not declare one
ingests as before, byte for byte.

Labels come from events (any / sum / last of the events of one type) or from an impression
field (its value, or 1 when it is at least a threshold), so that a log whose rows are
already the outcomes (a ratings log: user, item, rating, timestamp) needs no events log:
the events log is read only when some label derives from events.

Keys: an impression is identified by (request_id, item_id); events carry the same two
fields. Without a request id (`request_id: ""`), every impression is its own request,
identified by (user_id, item_id), and the train/eval split hashes that key (see
`partition_value`), so each row lands in one split whatever else is logged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from watchnext.core.log_schema import (
    CANDIDATE_VIDEO_ID,
    CLICK,
    CLICK_EVENT,
    DISMISS,
    DISMISS_EVENT,
    EVENT_FIELDS,
    EVENT_TYPES,
    IMPRESSION_FIELDS,
    LABEL_FIELDS,
    LIKE,
    LIKE_EVENT,
    POSITION,
    RATING,
    RATING_PRESENT,
    REQUEST_ID,
    SURVEY_EVENT,
    UNKNOWN_EVENT,
    USER_ID,
    WATCH_EVENT,
    WATCH_TIME,
    Field,
    FieldType,
)

LABEL_RULES = ("any", "sum", "last", "field")
# The name of the split's partition feature when the schema has no request id: the key.
ROW_KEY = "row_key"


@dataclass(frozen=True)
class LabelRule:
    """How one label column is computed for each impression.

    - any:   1 if the impression has at least one event of type `event`, else 0 (also the
             presence mask of a head whose label is an event's value).
    - sum:   the sum of the values of its `event` events (0.0 if none).
    - last:  the value of its latest `event` event (by timestamp, then file and line; 0.0 if none).
    - field: the impression field `field`: its value (as a float), or with `threshold`,
             1 when the value is ≥ threshold, else 0 (e.g. liked = rating ≥ 4).
    """

    name: str
    rule: Literal["any", "sum", "last", "field"] = "any"
    event: str = ""
    field: str = ""
    threshold: float | None = None
    meaning: str = ""

    @property
    def type(self) -> FieldType:
        """The tf.Example type of the label: 0/1 labels are ints, values floats."""
        return "int" if self.rule == "any" or self.threshold is not None else "float"

    @property
    def needs_value(self) -> bool:
        """Whether the rule reads its events' `value` (so such an event without one is rejected)."""
        return self.rule in ("sum", "last")

    def as_field(self) -> Field:
        """The label as a schema Field (for tf.Example types and documentation)."""
        return Field(self.name, self.type, True, self.meaning)


DEFAULT_LABEL_RULES: tuple[LabelRule, ...] = (
    LabelRule(CLICK, "any", CLICK_EVENT),
    LabelRule(WATCH_TIME, "sum", WATCH_EVENT),
    LabelRule(LIKE, "any", LIKE_EVENT),
    LabelRule(DISMISS, "any", DISMISS_EVENT),
    LabelRule(RATING, "last", SURVEY_EVENT),
    LabelRule(RATING_PRESENT, "any", SURVEY_EVENT),
)


@dataclass(frozen=True)
class LogSchema:
    """The declared log: impression fields, event types, label rules and the key fields."""

    impressions: tuple[Field, ...] = IMPRESSION_FIELDS
    event_types: tuple[str, ...] = EVENT_TYPES
    labels: tuple[LabelRule, ...] = DEFAULT_LABEL_RULES
    # The request (slate) an impression was shown in. Empty: every impression is its own
    # request, keyed by (user_id, item_id), and the split hashes that key.
    request_id: str = REQUEST_ID
    item_id: str = CANDIDATE_VIDEO_ID
    user_id: str = USER_ID
    # The slot field (bounded by features.max_position); empty: the log has no position.
    position: str = POSITION

    @functools.cached_property
    def is_default(self) -> bool:
        """The shipped YouTube-shaped schema: its extra checks (watch bounds, watch ≤ 10×
        video_duration) and the vectorised ingestion path apply only to it. (Cached: the
        per-record path asks for every record.)"""
        return self == DEFAULT_LOG_SCHEMA

    @property
    def key(self) -> tuple[str, str]:
        """The fields identifying one impression (and joining its events)."""
        return (self.request_id or self.user_id, self.item_id)

    @property
    def partition_feature(self) -> str:
        """The feature the train/eval split hashes: the request id, else the row key."""
        return self.request_id or ROW_KEY

    def partition_value(self, record: dict[str, Any]) -> str:
        """The split's hash input for one impression: its request id, else its key (unambiguous:
        length-prefixed), so that all candidates of a request, or each row, land in one split."""
        if self.request_id:
            return record[self.request_id]
        first, second = (record[k] for k in self.key)
        return f"{len(first)}:{first}{second}"

    @property
    def uses_events(self) -> bool:
        """Whether any label derives from events (otherwise the events log is not read)."""
        return any(rule.rule != "field" for rule in self.labels)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.impressions]

    def impression_field(self, name: str) -> Field | None:
        return next((f for f in self.impressions if f.name == name), None)

    @property
    def label_names(self) -> list[str]:
        return [rule.name for rule in self.labels]

    @property
    def event_fields(self) -> tuple[Field, ...]:
        """The events log's fields: the key fields, the event type, when, and its value."""
        if self.is_default:
            return EVENT_FIELDS
        key = tuple(Field(name, "string", True, "As in the impression.") for name in self.key)
        return (
            *key,
            Field("event", "string", True, "What happened.", allowed=self.event_types,
                  unknown_reason=UNKNOWN_EVENT),
            Field("timestamp", "int", True, "When it happened, unix seconds.", minimum=0),
            Field("value", "float", False, "The event's value (read by sum and last labels).",
                  nullable=True))

    @property
    def label_fields(self) -> tuple[Field, ...]:
        """The labels as Fields, in order (LABEL_FIELDS for the default schema)."""
        return LABEL_FIELDS if self.is_default else tuple(rule.as_field() for rule in self.labels)

    def example_fields(self) -> tuple[Field, ...]:
        """Every tf.Example feature LogExampleGen writes, in order: the impression fields, then the
        labels not named like an impression field (a `field` label may keep its field's name)."""
        return self._example_fields

    @functools.cached_property
    def _example_fields(self) -> tuple[Field, ...]:
        names = set(self.field_names)
        return self.impressions + tuple(f for f in self.label_fields if f.name not in names)

    def example_feature_types(self) -> dict[str, str]:
        """Every tf.Example feature → 'bytes', 'int64' or 'float' (see log_schema.example_feature_types)."""
        tf_type = {"string": "bytes", "string_list": "bytes", "int": "int64", "float": "float"}
        return {f.name: tf_type[f.type] for f in self.example_fields()}


DEFAULT_LOG_SCHEMA = LogSchema()
