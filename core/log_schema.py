"""The log schema: the contract between users' logs, the simulator and the ExampleGen.

Every field name, type and constraint of the two logs (impressions, events), of the
simulator's ground truth and of the labels the ExampleGen adds lives here, once, as
data. The validation (`validate_impression`, `validate_event`) and the README table
(`markdown_table`) are both derived from these definitions, so the documentation
cannot drift from what ingestion actually accepts.

Layout on disk, one folder per daily span (YYYYMMDD):

    LOGS/impressions/span=YYYYMMDD/*.jsonl[.gz] | *.json[.gz] | *.parquet
    LOGS/events/span=YYYYMMDD/...
    LOGS/truth/span=YYYYMMDD/...        (simulator only; never read by training)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from watchnext.core.records import markdown_cell, markdown_reasons

# ---------------------------------------------------------------------------
# Folder layout. `{SPAN:8}` is TFX's span placeholder (8 digits: YYYYMMDD).
IMPRESSIONS_LOG = "impressions"
EVENTS_LOG = "events"
TRUTH_LOG = "truth"
SPAN_DIR = "span={SPAN:8}"
IMPRESSIONS_PATTERN = f"{IMPRESSIONS_LOG}/{SPAN_DIR}/*"
EVENTS_PATTERN = f"{EVENTS_LOG}/{SPAN_DIR}/*"
# File name endings the ExampleGen reads; anything else (except hidden or
# `_`-prefixed marker files such as _SUCCESS, which are skipped) is an error.
JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)

# ---------------------------------------------------------------------------
# Field names of the default (YouTube-shaped) logs: written here once; the field tables below,
# the config's default features, the simulator and LogExampleGen's vectorised path name them.
REQUEST_ID = "request_id"
TIMESTAMP = "timestamp"
USER_ID = "user_id"
QUERY_VIDEO_ID = "query_video_id"
CANDIDATE_VIDEO_ID = "candidate_video_id"
POSITION = "position"
DEVICE = "device"
COUNTRY = "country"
VIDEO_DURATION = "video_duration"
VIDEO_AGE_DAYS = "video_age_days"
VIDEO_LOG_VIEWS = "video_log_views"
USER_ACTIVITY = "user_activity"
WATCH_HISTORY = "watch_history"
EVENT = "event"
VALUE = "value"

# ---------------------------------------------------------------------------
# Closed vocabularies and bounds.
DEVICES = ("mobile", "desktop", "tablet", "tv")
CLICK_EVENT = "click"
WATCH_EVENT = "watch"
LIKE_EVENT = "like"
DISMISS_EVENT = "dismiss"
SURVEY_EVENT = "survey"
EVENT_TYPES = (CLICK_EVENT, WATCH_EVENT, LIKE_EVENT, DISMISS_EVENT, SURVEY_EVENT)
# The default of config `features.max_position` (slots 0..19; LogExampleGen receives the
# configured value) and the watch_history feature's `max_length` (20).
MAX_POSITION = 20
MAX_HISTORY = 20
# A watch longer than a day, or than this many times the video, is a logging bug.
MAX_WATCH_SECONDS = 24 * 3600.0
MAX_WATCH_DURATION_RATIO = 10.0
MIN_RATING, MAX_RATING = 1.0, 5.0
# The longest JSON line read. A valid record is a few hundred bytes (≤ MAX_HISTORY ids of
# history); a longer line is a writer bug (a runaway list, a missing newline) and is
# rejected unparsed, so that one bad line cannot make a worker hold gigabytes.
MAX_LINE_BYTES = 1 << 20

# Label names of the default schema; the default heads (core/config/heads.py) read them.
CLICK = "click"
WATCH_TIME = "watch_time"
LIKE = "like"
DISMISS = "dismiss"
RATING = "rating"
RATING_PRESENT = "rating_present"
LABELS = (CLICK, WATCH_TIME, LIKE, DISMISS, RATING, RATING_PRESENT)

def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# Rejection reasons. Each is a counter (`<log>.rejected.<reason>`) and a `reason` in the
# rejected-records output; REJECTION_REASONS documents them (rendered into the README).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"
UNKNOWN_DEVICE = "unknown_device"
UNKNOWN_EVENT = "unknown_event"
MISSING_VALUE = "missing_value"
ABSURD_WATCH_TIME = "absurd_watch_time"
DUPLICATE_IMPRESSION = "duplicate_impression"
CONFLICTING_IMPRESSION = "conflicting_impression"
DUPLICATE_EVENT = "duplicate_event"
ORPHAN_EVENT = "orphan_event"
EVENT_OF_REJECTED_IMPRESSION = "event_of_rejected_impression"
WATCH_EXCEEDS_DURATION = "watch_exceeds_duration"
LINE_TOO_LONG = "line_too_long"

REJECTION_REASONS: dict[str, str] = {
    MALFORMED_JSON: "The line is not valid JSON (or not UTF-8).",
    NOT_AN_OBJECT: "The line is valid JSON but not an object.",
    MISSING_FIELD: "A required field is absent or null.",
    WRONG_TYPE: "A field has the wrong type (e.g. a string for a number, a non-integral "
                "number for an int; integral floats such as 3.0 are accepted as ints).",
    NON_FINITE: "A number is NaN or infinite.",
    OUT_OF_RANGE: "A value is outside its bounds (see the Constraint column), e.g. position ≥ "
                  "max_position, a negative watch, a rating outside 1–5, an empty id.",
    UNKNOWN_DEVICE: "The device is not one of " + ", ".join(DEVICES) + " (rejected, not mapped: "
                    "the position bias is modelled per device, so a new device should be added "
                    "to schema.DEVICES on purpose).",
    UNKNOWN_EVENT: "The event type is not one of " + ", ".join(EVENT_TYPES) + ".",
    MISSING_VALUE: "A watch or survey event has no value.",
    ABSURD_WATCH_TIME: "A watch event longer than 24 hours.",
    DUPLICATE_IMPRESSION: "An exact copy of an impression already read; the first copy "
                          "(by file, line) is kept.",
    CONFLICTING_IMPRESSION: "Two or more impressions share (request_id, candidate_video_id) but "
                            "differ; all of them are rejected (which one the events belong to "
                            "is unknowable).",
    DUPLICATE_EVENT: "An exact copy of an event already read (same request, candidate, event, "
                     "timestamp and value); the first copy is kept.",
    ORPHAN_EVENT: "An event whose (request_id, candidate_video_id) matches no impression.",
    EVENT_OF_REJECTED_IMPRESSION: "An event whose impression exists but was rejected.",
    WATCH_EXCEEDS_DURATION: "A watch event longer than " + _num(MAX_WATCH_DURATION_RATIO)
                            + "× the video's duration (the example is kept without it).",
    LINE_TOO_LONG: f"A JSON line longer than {MAX_LINE_BYTES:,} bytes (schema.MAX_LINE_BYTES): "
                   "skipped unparsed in bounded memory (its events, whose impression key was "
                   "not read, count as orphan_event).",
}


FieldType = Literal["string", "int", "float", "string_list"]


@dataclass(frozen=True)
class Field:
    """One column of a log record: its name, type, whether it must be present, and its bounds."""

    name: str
    type: FieldType = "string"
    required: bool = True
    meaning: str = ""
    # Bounds for numbers (inclusive unless exclusive_minimum), allowed values for strings,
    # and the longest accepted list.
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    max_items: int | None = None
    # Whether null is an accepted value (otherwise null counts as missing).
    nullable: bool = False
    # The rejection reason for a string outside `allowed`.
    unknown_reason: str = OUT_OF_RANGE
    # An optional field's value when a record lacks it (None: the type's empty value, see
    # `fill_value`): a missing optional field is filled, never a rejection.
    default: Any = None

    @property
    def fill_value(self) -> Any:
        """What an example holds when the record lacks this optional field: `default`, else the
        type's empty value ("" is an id Transform's vocabulary maps like any other, 0, 0.0, [])."""
        if self.default is not None:
            return list(self.default) if self.type == "string_list" else self.default
        return {"string": "", "int": 0, "float": 0.0, "string_list": []}[self.type]

    @property
    def constraint(self) -> str:
        """Human-readable bounds, for the README table and error messages."""
        parts = []
        if self.allowed:
            parts.append(" | ".join(self.allowed))
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '≥'} {_num(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"≤ {_num(self.maximum)}")
        if self.max_items is not None:
            parts.append(f"≤ {self.max_items} items")
        if self.type == "string" and not self.allowed:
            parts.append("non-empty")
        if self.nullable:
            parts.append("may be null")
        return ", ".join(parts)


IMPRESSION_FIELDS: tuple[Field, ...] = (
    Field(REQUEST_ID, "string", True, "Identifies one watch-next request (one slate); "
          "all candidates of a request land in the same train/eval split."),
    Field(TIMESTAMP, "int", True, "When the slate was shown, unix seconds.", minimum=0),
    Field(USER_ID, "string", True, "The viewer."),
    Field(QUERY_VIDEO_ID, "string", True, "The video being watched when the slate was shown."),
    Field(CANDIDATE_VIDEO_ID, "string", True, "The recommended video this record describes."),
    Field(POSITION, "int", True, "0-based slot of the candidate in the slate.",
          minimum=0, maximum=MAX_POSITION - 1),
    Field(DEVICE, "string", True, "Device the slate was shown on.", allowed=DEVICES,
          unknown_reason=UNKNOWN_DEVICE),
    Field(COUNTRY, "string", True, "Viewer's country code."),
    Field(VIDEO_DURATION, "float", True, "Candidate's length in seconds.",
          minimum=0, exclusive_minimum=True),
    Field(VIDEO_AGE_DAYS, "float", True, "Days since the candidate was uploaded.", minimum=0),
    Field(VIDEO_LOG_VIEWS, "float", True, "log(1 + views) of the candidate so far."),
    Field(USER_ACTIVITY, "float", True, "Viewer's activity, e.g. watches in the last 30 days.",
          minimum=0),
    Field(WATCH_HISTORY, "string_list", True, "Viewer's recent video ids, newest first; may be empty.",
          max_items=MAX_HISTORY),
)

EVENT_FIELDS: tuple[Field, ...] = (
    Field(REQUEST_ID, "string", True, "The request of the impression this event belongs to."),
    Field(CANDIDATE_VIDEO_ID, "string", True, "The candidate of that impression."),
    Field(EVENT, "string", True, "What the viewer did.", allowed=EVENT_TYPES,
          unknown_reason=UNKNOWN_EVENT),
    Field(TIMESTAMP, "int", True, "When it happened, unix seconds.", minimum=0),
    Field(VALUE, "float", False, "Seconds watched for `watch` (≥ 0, ≤ 24 h and ≤ "
          f"{_num(MAX_WATCH_DURATION_RATIO)}× video_duration); rating {_num(MIN_RATING)}–"
          f"{_num(MAX_RATING)} for `survey`; null otherwise (ignored).", nullable=True),
)

# The labels the ExampleGen adds to every impression (its tf.Example features besides the
# impression fields). `type` is the tf.Example type: int → int64_list, float → float_list.
LABEL_FIELDS: tuple[Field, ...] = (
    Field(CLICK, "int", True, "1 if the impression has at least one click event, else 0."),
    Field(WATCH_TIME, "float", True, "Sum of the values of its watch events, seconds (0 if none)."),
    Field(LIKE, "int", True, "1 if it has a like event."),
    Field(DISMISS, "int", True, "1 if it has a dismiss event."),
    Field(RATING, "float", True, "The latest survey rating (1–5); 0.0 when there is none."),
    Field(RATING_PRESENT, "int", True, "1 if it has a survey event (the rating head's mask)."),
)

TRUTH_FIELDS: tuple[Field, ...] = (
    Field(REQUEST_ID, "string", True, "As in the impression."),
    Field(CANDIDATE_VIDEO_ID, "string", True, "As in the impression."),
    Field(POSITION, "int", True, "As in the impression."),
    Field(DEVICE, "string", True, "As in the impression.", allowed=DEVICES),
    Field("examination", "float", True, "P(the viewer examines the slot) = 1/(1+position)^eta_device."),
    Field("p_click", "float", True, "P(click | examined)."),
    Field("p_like", "float", True, "P(like | click)."),
    Field("p_dismiss", "float", True, "P(dismiss | examined)."),
    Field("expected_watch_time", "float", True, "E[watch_time label] = examination · p_click · "
          "E[seconds watched | click]."),
    Field("relevance", "float", True, "The utility the logging policy ranks by (before its noise)."),
    Field("shuffled", "int", True, "1 if the request's slate was a uniformly random subset in random "
          "order (position effects are identifiable there), 0 if ranked by the logging policy."),
)

SCHEMAS: dict[str, tuple[Field, ...]] = {
    IMPRESSIONS_LOG: IMPRESSION_FIELDS,
    EVENTS_LOG: EVENT_FIELDS,
    TRUTH_LOG: TRUTH_FIELDS,
    "labels": LABEL_FIELDS,
}


def example_feature_types() -> dict[str, str]:
    """Every tf.Example feature the ExampleGen writes → 'bytes', 'int64' or 'float'.

    watch_history is the only multivalent feature (a bytes list, possibly empty);
    every other feature has exactly one value in every example.
    """
    tf_type = {"string": "bytes", "string_list": "bytes", "int": "int64", "float": "float"}
    return {f.name: tf_type[f.type] for f in IMPRESSION_FIELDS + LABEL_FIELDS}


def markdown_table(fields: tuple[Field, ...] | str) -> str:
    """Render a schema (a field tuple or a key of SCHEMAS) as a Markdown table for the README."""
    if isinstance(fields, str):
        fields = SCHEMAS[fields]
    type_name = {"string": "string", "int": "int", "float": "float", "string_list": "list[string]"}
    rows = ["| Field | Type | Required | Constraint | Meaning |", "|---|---|---|---|---|"]
    for f in fields:
        rows.append(f"| `{f.name}` | {type_name[f.type]} | {'yes' if f.required else 'no'} | "
                    f"{markdown_cell(f.constraint)} | {markdown_cell(f.meaning)} |")
    return "\n".join(rows)


def markdown_rejection_reasons() -> str:
    """The logs' rejection reasons as a Markdown table for the README."""
    return markdown_reasons(REJECTION_REASONS)


def markdown_schema() -> str:
    """All the log schema tables with headings, ready to paste into the README."""
    parts = [
        f"Impressions (`{IMPRESSIONS_LOG}/span=YYYYMMDD/`, one record per candidate shown):",
        markdown_table(IMPRESSION_FIELDS),
        f"Events (`{EVENTS_LOG}/span=YYYYMMDD/`, one record per viewer action):",
        markdown_table(EVENT_FIELDS),
        "Labels added to each example (besides every impression field):",
        markdown_table(LABEL_FIELDS),
        f"Simulator ground truth (`{TRUTH_LOG}/span=YYYYMMDD/`, never read by training):",
        markdown_table(TRUTH_FIELDS),
        "Why the ExampleGen rejects a record (each reason is counted and the record is kept, "
        "with its file and line, in the RejectedRecords output):",
        markdown_rejection_reasons(),
    ]
    return "\n\n".join(parts) + "\n"
