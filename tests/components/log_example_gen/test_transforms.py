"""The Beam PTransforms on tiny hand-written logs with known answers (TestPipeline + assert_that)."""

from __future__ import annotations

import gzip
import json
import os

from watchnext.components.example_gen.transforms import CountRecords, WriteRejected
from watchnext.components.log_example_gen import counts as counts_lib
from watchnext.components.log_example_gen import reading, transforms

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
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
        counts = out[transforms.COUNTS] | CountRecords()
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
        _ = p | beam.Create(rows) | WriteRejected(prefix)
    [name] = [n for n in os.listdir(tmp_path) if n.startswith("rejected")]
    assert name.endswith(".jsonl.gz")
    with gzip.open(tmp_path / name, "rt", encoding="utf-8") as f:
        assert [json.loads(x) for x in f] == rows


def _write(path, lines: list[str]) -> str:
    data = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)
    return str(path)


def _reasons(out) -> beam.PCollection:
    return out[transforms.REJECTED] | beam.Map(lambda r: (r["log"], r["line"], r["reason"], r["field"]))


def test_truncated_gzip_fails_the_run_naming_the_file(tiny, tmp_path):
    keys = [f"c{i}" for i in range(3000)]
    imp = _write(tmp_path / "imp.jsonl", [tiny.line(tiny.impression("r1", c)) for c in keys])
    whole = gzip.compress(("\n".join(tiny.line(tiny.event("r1", c, "click")) for c in keys) + "\n").encode())
    ev = tmp_path / "part-0.jsonl.gz"
    ev.write_bytes(whole[: len(whole) // 2])  # a copy cut off mid-stream
    with pytest.raises(Exception, match=r"part-0\.jsonl\.gz: truncated: .*after line \d+"):
        with test_pipeline.TestPipeline() as p:
            out = p | transforms.JoinLogsToExamples([imp], [str(ev)])
            _ = out[transforms.EXAMPLES] | beam.combiners.Count.Globally()


def test_huge_lines_are_rejected_with_a_reason_and_counted(tiny, tmp_path):
    long_history = tiny.impression("r1", "b", 1, watch_history=[f"v{i}" for i in range(100_000)])
    huge = tiny.impression("r1", "c", 2, user_id="u" * (20 << 20))  # a 20 MB line
    imp = _write(tmp_path / "imp.jsonl", [tiny.line(tiny.impression("r1", "a", 0)), tiny.line(long_history),
                                          tiny.line(huge)])
    ev = _write(tmp_path / "ev.jsonl.gz", [tiny.line(tiny.event("r1", k, "click")) for k in "abc"])
    with test_pipeline.TestPipeline() as p:
        out = p | transforms.JoinLogsToExamples([imp], [ev])
        assert_that(out[transforms.EXAMPLES] | beam.Map(_labels),
                    equal_to([(("r1", "a"), (1, 0.0, 0, 0, 0.0, 0))]), label="Labels")
        assert_that(_reasons(out), equal_to([
            ("impressions", 2, "out_of_range", "watch_history"),
            ("impressions", 3, "line_too_long", ""),
            ("events", 2, "event_of_rejected_impression", ""),
            ("events", 3, "orphan_event", ""),  # the huge line's key was never read
        ]), label="Rejections")
        bounded = out[transforms.REJECTED] | beam.Map(lambda r: len(r["raw"]) <= reading.RAW_TEXT_LIMIT + 1)
        assert_that(bounded | beam.Distinct(), equal_to([True]), label="RawTextBounded")
        counts = out[transforms.COUNTS] | CountRecords() | beam.Map(
            lambda c: (c["impressions.read"], c["impressions.rejected.out_of_range"],
                       c["impressions.rejected.line_too_long"], c["events.read"], c["events.merged"]))
        assert_that(counts, equal_to([(3, 1, 1, 3, 1)]), label="Counts")  # 3 in = 1 example + 2 rejected


def test_schema_drift_dropped_required_column_rejects_every_record_naming_it(tiny, tmp_path):
    # The impressions writer stops emitting `country`: every impression is refused naming the
    # field, every record is accounted for, and the run's failure names the reason.
    # (A new column and a dropped optional one: test_schema.py.)
    imp = _write(tmp_path / "imp.jsonl", [tiny.line(tiny.impression("r1", c, i, country=None))
                                          for i, c in enumerate("abc")])
    ev = _write(tmp_path / "ev.jsonl", [tiny.line(tiny.event("r1", "a", "click"))])

    def fails_naming_the_field(actual: list[dict[str, int]]) -> None:
        [flat] = actual
        summary = counts_lib.summarize(flat, ["train", "eval"], 20260101, None, {}, 0.01)
        assert summary["accounting_errors"] == [] and summary["examples"]["total"] == 0
        message = counts_lib.failure(summary, "REJECTED_URI")
        assert "impressions.missing_field=3" in message and "span 20260101" in message, message

    with test_pipeline.TestPipeline() as p:
        out = p | transforms.JoinLogsToExamples([imp], [ev])
        expected = [("impressions", n, "missing_field", "country") for n in (1, 2, 3)]
        assert_that(_reasons(out), equal_to([*expected, ("events", 1, "event_of_rejected_impression", "")]),
                    label="Rejections")
        counts = out[transforms.COUNTS] | CountRecords()
        assert_that(counts, fails_naming_the_field, label="Failure")
