"""The ExampleGen's Beam work as named PTransforms.

    JoinLogsToExampleBatches(...) → example batches | rejected | counts  (both logs, by shard)
    JoinLogsToExamples(...)       → tf.Examples | rejected | counts        (the same, one per element)

`counts` outputs are (count key, n) pairs, summed per bundle (example_gen.transforms:
CountingDoFn; CountRecords and WriteRejected consume them). Count keys double as the Beam
counter names: `<log>.read`, `<log>.blank_lines`,
`<log>.rejected.<reason>`, `events.merged`, `events.merged.<event>`,
`examples.watch_without_click` and `examples.<split>` (added by the executor).
"""

from __future__ import annotations

import logging
import zlib
from typing import Any, NamedTuple

from watchnext.components.example_gen.transforms import COUNTS, REJECTED, CountingDoFn
from watchnext.components.log_example_gen import columnar, columnar_join, join, reading, validation
from watchnext.core import log_schema as schema
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LogSchema
from watchnext.core.records import Invalid

import apache_beam as beam
import pyarrow as pa

EXAMPLES = "examples"

log = logging.getLogger(__name__)


# Records per block of the vectorised reader: large enough that Arrow's per-call cost is
# spread thin, small enough that a block in memory stays a few MB of JSON.
BLOCK_RECORDS = 20_000
# Join shards: records are grouped by crc32(request_id) % JOIN_SHARDS, so the shuffle moves
# a few Arrow tables per file instead of one element per record. Enough shards for a
# distributed runner to spread the join; a shard of a 10M-impression day holds ~600k rows.
JOIN_SHARDS = 16


def parse_line(log_name: str, source: str, line: int, payload: Any, max_position: int,
               log_schema: LogSchema = DEFAULT_LOG_SCHEMA
               ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, tuple[str, str] | None]:
    """The per-line path for one record: (clean record, None, None) or (None, rejection, key of a
    rejected impression whose key is usable, so that its events are not counted as orphans)."""
    if isinstance(payload, reading.OversizedLine):
        invalid = Invalid(schema.LINE_TOO_LONG, "", f"{payload.length:,} bytes, more than "
                                 f"schema.MAX_LINE_BYTES = {schema.MAX_LINE_BYTES:,}")
        return None, join.rejection(log_name, source, line, invalid, reading.raw_text(payload)), None
    value, error = reading.decode(payload)
    if error is not None:
        invalid = Invalid(schema.MALFORMED_JSON, "", error)
        return None, join.rejection(log_name, source, line, invalid, reading.raw_text(payload)), None
    if log_name == schema.IMPRESSIONS_LOG:
        record, invalid = validation.validate_impression(value, max_position, log_schema)
    else:
        record, invalid = validation.validate_event(value, log_schema)
    if invalid is not None:
        key = _usable_key(value, log_schema) if log_name == schema.IMPRESSIONS_LOG else None
        return None, join.rejection(log_name, source, line, invalid, reading.raw_text(payload)), key
    return record, None, None


def _usable_key(value: Any, log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    rid, cid = (value.get(name) for name in log_schema.key)
    return (rid, cid) if isinstance(rid, str) and isinstance(cid, str) and rid and cid else None


class _ReadBlocks(CountingDoFn):
    """Reads, decodes and validates one log file in blocks; emits (join shard, columnar.Block).

    A block of JSON lines is parsed and validated by column (columnar.parse_block and
    clean_mask); the lines the vectorised path does not accept (or all lines of a block the
    Arrow reader refuses, every Parquet row, and every line when vectorised=False) take the
    per-line path (parse_line), which names each rejected line's reason.
    """

    def __init__(self, log_name: str, max_position: int, shards: int, vectorised: bool,
                 log_schema: LogSchema = DEFAULT_LOG_SCHEMA, spill_dir: str | None = None):
        super().__init__()
        self._log = log_name
        self._schema = log_schema
        self._max_position = max_position
        self._shards = shards
        self._vectorised = vectorised
        self._spill_dir = spill_dir

    def process(self, path: str):
        records = blank = 0
        block: list[tuple[int, Any]] = []
        for line, payload in reading.read_log_file(path):
            if payload is None:
                blank += 1
                continue
            records += 1
            block.append((line, payload))
            if len(block) == BLOCK_RECORDS:
                yield from self._block(path, block)
                block = []
        if block:
            yield from self._block(path, block)
        self.count(join.counter_name(self._log, "blank_lines"), blank)
        log.info("read %d %s records (%d blank lines) from %s", records, self._log, blank, path)

    def _block(self, path: str, block: list[tuple[int, Any]]):
        self.count(join.counter_name(self._log, "read"), len(block))
        tables, slow = [], block
        if self._vectorised:
            fast = [(n, p) for n, p in block if isinstance(p, bytes)]
            table = columnar.parse_block(self._log, [p for _, p in fast], [n for n, _ in fast], self._schema)
            if table is not None:
                ok = columnar.clean_mask(self._log, table, self._max_position, self._schema)
                tables.append(table.filter(pa.array(ok)))
                slow = [item for item, good in zip(fast, ok.tolist(), strict=True) if not good]
                slow += [(n, p) for n, p in block if not isinstance(p, bytes)]
        clean, lines, tombstones = [], [], []
        for line, payload in slow:
            record, rejected, key = parse_line(self._log, path, line, payload, self._max_position,
                                               self._schema)
            if rejected is not None:
                yield beam.pvalue.TaggedOutput(REJECTED, rejected)
                if key is not None:
                    tombstones.append((*key, line))
            else:
                clean.append(record)
                lines.append(line)
        if clean:
            tables.append(columnar.records_table(self._log, clean, lines, self._schema))
        table = (pa.concat_tables(tables) if tables
                 else columnar.arrow_schema(self._log, self._schema).empty_table())
        if self._log == schema.EVENTS_LOG:
            table = columnar.clean_events(table, self._schema)
        # Every record of a key shares its first key field (request_id), hence its shard.
        shard = columnar.shard_of(table.column(self._schema.key[0]), self._shards)
        tomb_shard = [zlib.crc32(rid.encode()) % self._shards for rid, _, _ in tombstones]
        for s in sorted(set(shard.tolist()) | set(tomb_shard)):
            block = columnar.Block(self._log, path, table.filter(pa.array(shard == s)),
                                   [t for t, ts in zip(tombstones, tomb_shard, strict=True) if ts == s])
            yield s, (block if self._spill_dir is None else columnar.spill_block(block, self._spill_dir, s))


class ExampleBatch(NamedTuple):
    """One join shard's serialized tf.Examples and the split's hash input of each (its request_id,
    or for a schema without one, its key: LogSchema.partition_value)."""

    shard: int
    request_ids: list[str]
    examples: list[bytes]


class _JoinShard(CountingDoFn):
    """Joins one shard's blocks (columnar_join.join_shard); emits its examples as one ExampleBatch."""

    def __init__(self, vectorised: bool, log_schema: LogSchema = DEFAULT_LOG_SCHEMA):
        super().__init__()
        self._vectorised = vectorised
        self._schema = log_schema

    def process(self, element: tuple[int, list[columnar.Block | str]]):
        shard, blocks = element
        blocks = [columnar.load_block(b) if isinstance(b, str) else b for b in blocks]
        result = columnar_join.join_shard(blocks, self._vectorised, self._schema)
        for rejected in result.rejected:
            yield beam.pvalue.TaggedOutput(REJECTED, rejected)
        for key, n in result.counts.items():
            self.count(key, n)
        if result.examples:
            yield ExampleBatch(shard, result.request_ids, result.examples)


class JoinLogsToExampleBatches(beam.PTransform):
    """Reads and validates both logs, joins events to impressions, computes labels.

    Returns a dict of PCollections: `examples` (an ExampleBatch per join shard), `rejected`
    (dicts, see join.rejection) and `counts` ((count key, n) pairs, rejections included).
    vectorised=False runs the per-line reference path for every record (same outputs, slower).
    A declared log schema is vectorised as the default one is (columnar.py, columnar_join.py); its
    events log may be empty (no label reads events).

    With `spill_dir`, each block is written there (columnar.spill_block) and the shuffle moves
    only file names: the join then holds one shard in memory, not the whole span. Beam's
    DirectRunner keeps every element of a GroupByKey in memory: about 12 GB for a day of 10M
    impressions (bench pipeline_scale). The caller removes the folder after the pipeline.
    """

    def __init__(self, impression_files: list[str], event_files: list[str],
                 max_position: int = schema.MAX_POSITION, *, vectorised: bool = True,
                 shards: int = JOIN_SHARDS, log_schema: LogSchema = DEFAULT_LOG_SCHEMA,
                 spill_dir: str | None = None):
        super().__init__()
        self._spill_dir = spill_dir
        self._files = {schema.IMPRESSIONS_LOG: impression_files, schema.EVENTS_LOG: event_files}
        self._max_position = max_position
        if not log_schema.is_default:
            log.info("LogExampleGen: a declared log schema (%d impression fields, %d labels), %s path",
                     len(log_schema.impressions), len(log_schema.labels),
                     "vectorised" if vectorised else "per-record")
        self._vectorised = vectorised
        self._shards = shards
        self._schema = log_schema

    def expand(self, pipeline: beam.Pipeline):
        blocks, rejected, counts = [], [], []
        for log_name, files in self._files.items():
            name = log_name.capitalize()
            read = (pipeline
                    | f"List{name}" >> beam.Create(files)
                    | f"Reshuffle{name}" >> beam.Reshuffle()
                    | f"Read{name}" >> beam.ParDo(_ReadBlocks(
                        log_name, self._max_position, self._shards, self._vectorised,
                        self._schema, self._spill_dir)).with_outputs(
                        REJECTED, COUNTS, main="blocks"))
            blocks.append(read.blocks)
            rejected.append(read[REJECTED])
            counts.append(read[COUNTS])
        joined = (blocks
                  | "FlattenBlocks" >> beam.Flatten()
                  | "GroupByShard" >> beam.GroupByKey()
                  | "JoinAndLabel" >> beam.ParDo(_JoinShard(self._vectorised, self._schema)).with_outputs(
                      REJECTED, COUNTS, main=EXAMPLES))
        all_rejected = [*rejected, joined[REJECTED]] | "FlattenRejected" >> beam.Flatten()
        rejected_counts = all_rejected | "CountRejected" >> beam.Map(
            lambda r: (join.counter_name(r["log"], "rejected", r["reason"]), 1))
        return {
            EXAMPLES: joined[EXAMPLES],
            REJECTED: all_rejected,
            COUNTS: [*counts, joined[COUNTS], rejected_counts] | "FlattenCounts" >> beam.Flatten(),
        }


class JoinLogsToExamples(beam.PTransform):
    """JoinLogsToExampleBatches with one tf.train.Example per element in `examples` (for
    consumers that want examples; the executor writes the serialized batches directly)."""

    def __init__(self, impression_files: list[str], event_files: list[str],
                 max_position: int = schema.MAX_POSITION, *, vectorised: bool = True,
                 log_schema: LogSchema = DEFAULT_LOG_SCHEMA):
        super().__init__()
        self._batches = JoinLogsToExampleBatches(impression_files, event_files, max_position,
                                                 vectorised=vectorised, log_schema=log_schema)

    def expand(self, pipeline: beam.Pipeline):
        out = pipeline | "JoinBatches" >> self._batches
        examples = out[EXAMPLES] | "ParseExamples" >> beam.FlatMap(_parse_examples)
        return {**out, EXAMPLES: examples}


def _parse_examples(batch: ExampleBatch) -> list[Any]:
    from tensorflow.core.example import example_pb2

    return [example_pb2.Example.FromString(x) for x in batch.examples]
