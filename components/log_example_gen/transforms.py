"""The ExampleGen's Beam work as named PTransforms.

    ReadLog(log, files)          → (source, line, payload)          one per non-blank record
    ParseRecords(log)            → keyed valid records | rejected | counts
    JoinLogsToExamples(...)      → tf.Examples | rejected | counts   (both logs, CoGroupByKey)
    CountRecords()               → one {count key: n} dict; each key also a Beam counter
    WriteRejected(prefix)        → rejected-SSSSS-of-NNNNN.jsonl.gz

`counts` outputs are (count key, n) pairs, summed per bundle so that counting costs a
few elements per bundle rather than one per record. Count keys double as the Beam
counter names (namespace COUNTER_NAMESPACE): `<log>.read`, `<log>.blank_lines`,
`<log>.rejected.<reason>`, `events.merged`, `events.merged.<event>`,
`examples.watch_without_click` and `examples.<split>` (added by the executor).
"""

from __future__ import annotations

import collections
import json
import logging
from typing import Any

from watchnext.components.log_example_gen import join, reading, schema

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

COUNTER_NAMESPACE = "LogExampleGen"
REJECTED = "rejected"
COUNTS = "counts"
EXAMPLES = "examples"

log = logging.getLogger(__name__)


class _CountingDoFn(beam.DoFn):
    """A DoFn that tallies count keys and emits the bundle's totals to the `counts` output."""

    def start_bundle(self):
        self._counts: collections.Counter[str] = collections.Counter()

    def count(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    def finish_bundle(self):
        for key, n in self._counts.items():
            yield beam.pvalue.TaggedOutput(COUNTS, WindowedValue(
                (key, n), window.GlobalWindow().max_timestamp(), [window.GlobalWindow()]))
        self._counts.clear()


class _ReadFile(_CountingDoFn):
    """Reads one log file; logs a line per file with its record count (progress)."""

    def __init__(self, log_name: str):
        super().__init__()
        self._log = log_name

    def process(self, path: str):
        records = blank = 0
        for line, payload in reading.read_log_file(path):
            if payload is None:
                blank += 1
                continue
            records += 1
            yield path, line, payload
        self.count(join.counter_name(self._log, "blank_lines"), blank)
        log.info("read %d %s records (%d blank lines) from %s", records, self._log, blank, path)


@beam.ptransform_fn
def ReadLog(pipeline: beam.Pipeline, log_name: str, files: list[str]):
    """Every record of `files` as (source file, line, payload); blank lines are only counted."""
    return (pipeline
            | "ListFiles" >> beam.Create(files)
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadFiles" >> beam.ParDo(_ReadFile(log_name)).with_outputs(COUNTS, main="records"))


class _ParseRecord(_CountingDoFn):
    """Decodes and validates one record; emits ((request_id, candidate_video_id), located record)."""

    def __init__(self, log_name: str, max_position: int):
        super().__init__()
        self._log = log_name
        self._max_position = max_position

    def process(self, element: tuple[str, int, Any]):
        source, line, payload = element
        self.count(join.counter_name(self._log, "read"))
        if isinstance(payload, reading.OversizedLine):
            invalid = schema.Invalid(schema.LINE_TOO_LONG, "", f"{payload.length:,} bytes, more than "
                                     f"schema.MAX_LINE_BYTES = {schema.MAX_LINE_BYTES:,}")
            yield beam.pvalue.TaggedOutput(REJECTED, join.rejection(
                self._log, source, line, invalid, reading.raw_text(payload)))
            return
        value, error = reading.decode(payload)
        if error is not None:
            invalid = schema.Invalid(schema.MALFORMED_JSON, "", error)
            yield beam.pvalue.TaggedOutput(REJECTED, join.rejection(
                self._log, source, line, invalid, reading.raw_text(payload)))
            return
        if self._log == schema.IMPRESSIONS_LOG:
            record, invalid = schema.validate_impression(value, self._max_position)
        else:
            record, invalid = schema.validate_event(value)
        if invalid is not None:
            yield beam.pvalue.TaggedOutput(REJECTED, join.rejection(
                self._log, source, line, invalid, reading.raw_text(payload)))
            key = _usable_key(value)
            if self._log == schema.IMPRESSIONS_LOG and key is not None:
                yield key, (source, line, None)  # tombstone: its events are not orphans
            return
        yield (record["request_id"], record["candidate_video_id"]), (source, line, record)


def _usable_key(value: Any) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    rid, cid = value.get("request_id"), value.get("candidate_video_id")
    return (rid, cid) if isinstance(rid, str) and isinstance(cid, str) and rid and cid else None


@beam.ptransform_fn
def ParseRecords(records, log_name: str, max_position: int = schema.MAX_POSITION):
    """(source, line, payload) → keyed records (main), rejected dicts, counts."""
    return records | "Validate" >> beam.ParDo(_ParseRecord(log_name, max_position)).with_outputs(
        REJECTED, COUNTS, main="keyed")


class _JoinKey(_CountingDoFn):
    """Applies join.join_key to one CoGroupByKey group."""

    def process(self, element: tuple[tuple[str, str], dict[str, list]]):
        _, grouped = element
        result = join.join_key(list(grouped[schema.IMPRESSIONS_LOG]), list(grouped[schema.EVENTS_LOG]))
        for rejected in result.rejected:
            yield beam.pvalue.TaggedOutput(REJECTED, rejected)
        for key in result.counts:
            self.count(key)
        if result.features is not None:
            yield join.to_example(result.features)


class JoinLogsToExamples(beam.PTransform):
    """Reads and validates both logs, joins events to impressions, computes labels.

    Returns a dict of PCollections: `examples` (tf.train.Example), `rejected` (dicts, see
    join.rejection) and `counts` ((count key, n) pairs, rejections included).
    """

    def __init__(self, impression_files: list[str], event_files: list[str],
                 max_position: int = schema.MAX_POSITION):
        super().__init__()
        self._files = {schema.IMPRESSIONS_LOG: impression_files, schema.EVENTS_LOG: event_files}
        self._max_position = max_position

    def expand(self, pipeline: beam.Pipeline):
        keyed, rejected, counts = {}, [], []
        for log_name, files in self._files.items():
            name = log_name.capitalize()
            read = pipeline | f"Read{name}" >> ReadLog(log_name, files)
            parsed = read.records | f"Parse{name}" >> ParseRecords(log_name, self._max_position)
            keyed[log_name] = parsed.keyed
            rejected.append(parsed[REJECTED])
            counts += [read[COUNTS], parsed[COUNTS]]
        joined = (keyed
                  | "GroupByImpressionKey" >> beam.CoGroupByKey()
                  | "JoinAndLabel" >> beam.ParDo(_JoinKey()).with_outputs(REJECTED, COUNTS, main=EXAMPLES))
        all_rejected = [*rejected, joined[REJECTED]] | "FlattenRejected" >> beam.Flatten()
        rejected_counts = all_rejected | "CountRejected" >> beam.Map(
            lambda r: (join.counter_name(r["log"], "rejected", r["reason"]), 1))
        return {
            EXAMPLES: joined[EXAMPLES],
            REJECTED: all_rejected,
            COUNTS: [*counts, joined[COUNTS], rejected_counts] | "FlattenCounts" >> beam.Flatten(),
        }


class _IncrementCounter(beam.DoFn):
    """Adds each key's total to the Beam counter of the same name, and passes it on."""

    def process(self, element: tuple[str, int]):
        key, n = element
        Metrics.counter(COUNTER_NAMESPACE, key).inc(n)
        yield element


@beam.ptransform_fn
def CountRecords(counts):
    """(count key, n) pairs → a single {key: total} dict ({} if none); zero totals are dropped."""
    return (counts
            | "SumPerKey" >> beam.CombinePerKey(sum)
            | "DropZeros" >> beam.Filter(lambda kv: kv[1] != 0)
            | "IncrementCounters" >> beam.ParDo(_IncrementCounter())
            | "ToDict" >> beam.combiners.ToDict())


@beam.ptransform_fn
def WriteRejected(rejected, file_path_prefix: str):
    """Rejected-record dicts → gzip'd JSON Lines shards `<prefix>-SSSSS-of-NNNNN.jsonl.gz`."""
    return (rejected
            | "ToJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, ensure_ascii=False))
            | "Write" >> beam.io.WriteToText(file_path_prefix, file_name_suffix=".jsonl.gz",
                                             compression_type=beam.io.filesystem.CompressionTypes.GZIP))
