"""Tiny hand-written logs whose examples, labels and rejections are known in advance."""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

SPAN = 20260101


def impression(rid: str, cid: str, position: Any = 0, **changes: Any) -> dict[str, Any]:
    """A valid impression record, with `changes` applied (None deletes a field)."""
    record = {"request_id": rid, "timestamp": 1767225600, "user_id": "u1", "query_video_id": "q1",
              "candidate_video_id": cid, "position": position, "device": "mobile", "country": "US",
              "video_duration": 60.0, "video_age_days": 3.0, "video_log_views": 5.5, "user_activity": 4.0,
              "watch_history": ["h1", "h2"]}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def event(rid: str, cid: str, kind: str, value: float | None = None, ts: int = 1767225700) -> dict[str, Any]:
    return {"request_id": rid, "candidate_video_id": cid, "event": kind, "timestamp": ts, "value": value}


def line(record: Any) -> str:
    return json.dumps(record, allow_nan=True)


# Impressions file, line by line (1-based line numbers matter for the rejected output).
IMPRESSION_LINES = [
    line(impression("r1", "a", 0)),                                   # 1 click+watch+like
    line(impression("r1", "b", 1)),                                   # 2 click, no watch
    line(impression("r1", "c", 2)),                                   # 3 dismiss, absurd-for-video watch
    line(impression("r2", "a", 0, device="desktop")),                 # 4 two watches, two surveys
    line(impression("r2", "d", 1, watch_history=[])),                 # 5 watch without click
    line(impression("r2", "e", 2, device="fridge")),                  # 6 unknown_device
    line(impression("r3", "x", 0)),                                   # 7 kept
    line(impression("r3", "x", 0)),                                   # 8 duplicate_impression
    line(impression("r4", "y", 0)),                                   # 9 conflicting_impression
    line(impression("r4", "y", 1)),                                   # 10 conflicting_impression
    "{not json",                                                      # 11 malformed_json
    "[1, 2]",                                                         # 12 not_an_object
    line(impression("r5", "m", 0, user_id=None)),                     # 13 missing_field
    line(impression("r5", "n", 1, video_duration=math.nan)),          # 14 non_finite
    line(impression("r5", "o", 25)),                                  # 15 out_of_range (position)
    "",                                                               # 16 blank: not a record
    line(impression("r5", "p", "3")),                                 # 17 wrong_type
    line(impression("r6", "q", 0, timestamp=1767225600.0)),           # 18 integral float: accepted
]

EVENT_LINES = [
    line(event("r1", "a", "click")),                                  # 1
    line(event("r1", "a", "watch", 100.0, ts=1767225800)),            # 2
    line(event("r1", "a", "like")),                                   # 3
    line(event("r1", "b", "click")),                                  # 4
    line(event("r1", "c", "dismiss")),                                # 5
    line(event("r1", "c", "watch", 700.0)),                           # 6 watch_exceeds_duration (> 10 × 60 s)
    line(event("r2", "a", "click")),                                  # 7
    line(event("r2", "a", "click")),                                  # 8 duplicate_event
    line(event("r2", "a", "watch", 50.0, ts=1767225710)),             # 9
    line(event("r2", "a", "watch", 30.0, ts=1767225720)),             # 10
    line(event("r2", "a", "survey", 4.0, ts=1767225730)),             # 11 superseded by the later survey
    line(event("r2", "a", "survey", 2.0, ts=1767225790)),             # 12
    line(event("r2", "d", "watch", 20.0)),                            # 13 watch without click
    line(event("r2", "e", "click")),                                  # 14 event_of_rejected_impression
    line(event("r4", "y", "click")),                                  # 15 event_of_rejected_impression
    line(event("r9", "z", "click")),                                  # 16 orphan_event
    line(event("r1", "a", "share")),                                  # 17 unknown_event
    line(event("r1", "b", "watch", -5.0)),                            # 18 out_of_range
    line(event("r1", "b", "watch", 100000.0)),                        # 19 absurd_watch_time
    line(event("r1", "b", "survey")),                                 # 20 missing_value
    "not json at all",                                                # 21 malformed_json
    line(event("r6", "q", "like", 7.0)),                              # 22 value ignored for like
]

# (request_id, candidate) → (click, watch_time, like, dismiss, rating, rating_present)
EXPECTED_LABELS = {
    ("r1", "a"): (1, 100.0, 1, 0, 0.0, 0),
    ("r1", "b"): (1, 0.0, 0, 0, 0.0, 0),
    ("r1", "c"): (0, 0.0, 0, 1, 0.0, 0),
    ("r2", "a"): (1, 80.0, 0, 0, 2.0, 1),
    ("r2", "d"): (0, 20.0, 0, 0, 0.0, 0),
    ("r3", "x"): (0, 0.0, 0, 0, 0.0, 0),
    ("r6", "q"): (0, 0.0, 1, 0, 0.0, 0),
}

# (log, line) → reason
EXPECTED_REJECTIONS = {
    ("impressions", 6): "unknown_device",
    ("impressions", 8): "duplicate_impression",
    ("impressions", 9): "conflicting_impression",
    ("impressions", 10): "conflicting_impression",
    ("impressions", 11): "malformed_json",
    ("impressions", 12): "not_an_object",
    ("impressions", 13): "missing_field",
    ("impressions", 14): "non_finite",
    ("impressions", 15): "out_of_range",
    ("impressions", 17): "wrong_type",
    ("events", 6): "watch_exceeds_duration",
    ("events", 8): "duplicate_event",
    ("events", 14): "event_of_rejected_impression",
    ("events", 15): "event_of_rejected_impression",
    ("events", 16): "orphan_event",
    ("events", 17): "unknown_event",
    ("events", 18): "out_of_range",
    ("events", 19): "absurd_watch_time",
    ("events", 20): "missing_value",
    ("events", 21): "malformed_json",
}

IMPRESSIONS_READ = len([x for x in IMPRESSION_LINES if x])  # 17 records, 1 blank line
EVENTS_READ = len(EVENT_LINES)  # 22
EVENTS_MERGED = EVENTS_READ - sum(1 for log, _ in EXPECTED_REJECTIONS if log == "events")  # 12


def write_logs(logs_dir: str, span: int = SPAN, impressions: list[str] | None = None,
               events: list[str] | None = None) -> dict[str, str]:
    """Impressions as plain .jsonl, events as .jsonl.gz (both formats get exercised)."""
    paths = {}
    for log, lines, name in (("impressions", impressions or IMPRESSION_LINES, "part-0.jsonl"),
                             ("events", events or EVENT_LINES, "part-0.jsonl.gz")):
        folder = os.path.join(logs_dir, log, f"span={span}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        data = ("\n".join(lines) + "\n").encode()
        with open(path, "wb") as f:
            f.write(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        paths[log] = path
    return paths


@pytest.fixture
def tiny() -> SimpleNamespace:
    """This module's constants and helpers, for tests (conftest is not importable as a module)."""
    return SimpleNamespace(**{k: v for k, v in globals().items() if k.isupper() or k in (
        "impression", "event", "line", "write_logs")})


@pytest.fixture
def tiny_logs(tmp_path) -> dict[str, str]:
    """The hand-written logs above under tmp_path/logs; returns {'dir', 'impressions', 'events'}."""
    logs_dir = str(tmp_path / "logs")
    return {"dir": logs_dir, **write_logs(logs_dir)}


def join_outputs(out_dir: Any, impressions: list[str], events: list[str], *, vectorised: bool,
                 example_line: Callable[[str, bytes], str], shards: int = 3,
                 log_schema: Any = None, spill_dir: str | None = None) -> dict[str, list]:
    """Both logs through transforms.JoinLogsToExampleBatches on the DirectRunner: sorted
    `example_line(request_id, serialized example)` lines, rejections (JSON, sorted keys) and
    counts, written under `out_dir` and read back. The two paths' equivalence tests compare these."""
    from watchnext.components.example_gen.transforms import CountRecords
    from watchnext.components.log_example_gen import transforms

    import apache_beam as beam

    schema_arg = {} if log_schema is None else {"log_schema": log_schema}
    with beam.Pipeline() as p:
        out = p | transforms.JoinLogsToExampleBatches(impressions, events, vectorised=vectorised,
                                                      shards=shards, spill_dir=spill_dir, **schema_arg)
        _ = (out[transforms.EXAMPLES]
             | beam.FlatMap(lambda b: [example_line(rid, x)
                                       for rid, x in zip(b.request_ids, b.examples, strict=True)])
             | "WriteExamples" >> beam.io.WriteToText(str(out_dir / "examples")))
        _ = (out[transforms.REJECTED] | beam.Map(lambda r: json.dumps(r, sort_keys=True))
             | "WriteRejected" >> beam.io.WriteToText(str(out_dir / "rejected")))
        _ = (out[transforms.COUNTS] | CountRecords() | beam.Map(json.dumps)
             | "WriteCounts" >> beam.io.WriteToText(str(out_dir / "counts")))
    result = {}
    for kind in ("examples", "rejected", "counts"):
        lines = []
        for file_name in os.listdir(out_dir):
            if file_name.startswith(kind):
                lines += (out_dir / file_name).read_text().splitlines()
        result[kind] = sorted(lines)
    result["counts"] = [json.loads(x) for x in result["counts"]]
    return result


@pytest.fixture
def beam_join() -> Callable[..., dict[str, list]]:
    """`join_outputs`, for tests (conftest is not importable as a module)."""
    return join_outputs


def resolved_exec_properties(component: Any) -> dict[str, Any]:
    """A component's exec properties as an orchestrator hands them to the executor: protos as
    JSON, then span/version/fingerprint resolved by the component's own driver (no MLMD needed)."""
    from google.protobuf import message
    from tfx.utils import proto_utils

    props = {k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
             for k, v in component.exec_properties.items() if v is not None}
    return component.driver_class(None).resolve_exec_properties(props, None, None)


@pytest.fixture
def resolve() -> Any:
    return resolved_exec_properties
