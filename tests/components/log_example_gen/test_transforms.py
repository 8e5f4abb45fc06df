"""The Beam PTransforms on tiny hand-written logs with known answers (TestPipeline + assert_that)."""

from __future__ import annotations

import gzip
import json
import os

from watchnext.components.log_example_gen import transforms

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to


def _labels(example) -> tuple:
    f = example.features.feature
    key = (f["request_id"].bytes_list.value[0].decode(), f["candidate_video_id"].bytes_list.value[0].decode())
    return (key,
            (f["click"].int64_list.value[0], round(f["watch_time"].float_list.value[0], 3),
             f["like"].int64_list.value[0], f["dismiss"].int64_list.value[0],
             round(f["rating"].float_list.value[0], 3), f["rating_present"].int64_list.value[0]))


def _expected_counts(tiny) -> dict[str, int]:
    expected = {"impressions.read": tiny.IMPRESSIONS_READ, "events.read": tiny.EVENTS_READ,
                "impressions.blank_lines": 1, "events.merged": tiny.EVENTS_MERGED,
                "examples.watch_without_click": 1,
                "events.merged.click": 3, "events.merged.watch": 4, "events.merged.like": 2,
                "events.merged.dismiss": 1, "events.merged.survey": 2}
    for (log, _), reason in tiny.EXPECTED_REJECTIONS.items():
        key = f"{log}.rejected.{reason}"
        expected[key] = expected.get(key, 0) + 1
    return expected


def test_join_logs_to_examples_known_answers(tiny, tiny_logs):
    with test_pipeline.TestPipeline() as p:
        out = p | transforms.JoinLogsToExamples([tiny_logs["impressions"]], [tiny_logs["events"]])
        assert_that(out[transforms.EXAMPLES] | beam.Map(_labels),
                    equal_to(list(tiny.EXPECTED_LABELS.items())), label="Labels")
        rejected = out[transforms.REJECTED] | beam.Map(lambda r: ((r["log"], r["line"]), r["reason"]))
        assert_that(rejected, equal_to(list(tiny.EXPECTED_REJECTIONS.items())), label="Rejections")
        sources = out[transforms.REJECTED] | beam.Map(lambda r: (r["source"], bool(r["raw"])))
        assert_that(sources | beam.Distinct(), equal_to(
            [(tiny_logs["impressions"], True), (tiny_logs["events"], True)]), label="Sources")
        counts = out[transforms.COUNTS] | transforms.CountRecords()
        assert_that(counts, equal_to([_expected_counts(tiny)]), label="Counts")
        details = (out[transforms.REJECTED]
                   | beam.Filter(lambda r: r["reason"] in ("malformed_json", "unknown_device"))
                   | beam.Map(lambda r: (r["line"], r["field"], r["raw"][:9])))
        assert_that(details, equal_to([(11, "", "{not json"), (6, "device", '{"request'),
                                       (21, "", "not json ")]), label="RawText")


def test_parquet_logs_are_read(tiny, tmp_path):
    imp_path, ev_path = str(tmp_path / "imp.parquet"), str(tmp_path / "ev.parquet")
    impressions = [tiny.impression("r1", "a", 0), tiny.impression("r1", "b", 1, video_duration=float("nan"))]
    pq.write_table(pa.Table.from_pylist(impressions), imp_path)
    pq.write_table(pa.Table.from_pylist([tiny.event("r1", "a", "watch", 30.0), tiny.event("r1", "a", "click"),
                                         tiny.event("r1", "b", "click")]), ev_path)
    with test_pipeline.TestPipeline() as p:
        out = p | transforms.JoinLogsToExamples([imp_path], [ev_path])
        assert_that(out[transforms.EXAMPLES] | beam.Map(_labels),
                    equal_to([(("r1", "a"), (1, 30.0, 0, 0, 0.0, 0))]), label="Labels")
        assert_that(out[transforms.REJECTED] | beam.Map(lambda r: (r["log"], r["line"], r["reason"])),
                    equal_to([("impressions", 2, "non_finite"),
                              ("events", 3, "event_of_rejected_impression")]), label="Rejections")


def test_write_rejected_writes_gzipped_json_lines(tmp_path):
    rows = [{"log": "events", "line": 3, "reason": "orphan_event", "raw": "é"}]
    prefix = str(tmp_path / "rejected")
    with test_pipeline.TestPipeline() as p:
        _ = p | beam.Create(rows) | transforms.WriteRejected(prefix)
    [name] = [n for n in os.listdir(tmp_path) if n.startswith("rejected")]
    assert name.endswith(".jsonl.gz")
    with gzip.open(tmp_path / name, "rt", encoding="utf-8") as f:
        assert [json.loads(x) for x in f] == rows
