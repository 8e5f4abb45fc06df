"""TableExampleGen's Beam work as one named PTransform.

    ReadTable(files, spec, split_names, buckets) → {split: serialized tf.Examples,
                                                    rejected: dicts, counts: (key, n)}

Each file is read by one DoFn call, line by line (row by row for Parquet), so a rejected
row keeps its file and line (Beam's text sources do not report them; see
log_example_gen/reading.py). Count
keys: `rows.read`, `rows.blank_lines`, `rows.header_lines`, `rows.rejected.<reason>`,
`labels.<label>.positive`; the executor adds `examples.<split>` by counting what reaches
each writer. Counting, the rejected-records format and the writers are the ExampleGen
base's (components/example_gen/).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from watchnext.components.example_gen.transforms import COUNTS, REJECTED, CountingDoFn
from watchnext.components.table_example_gen import parsing
from watchnext.core.records import Invalid, raw_text, rejection

import apache_beam as beam

log = logging.getLogger(__name__)


def count_key(*parts: str) -> str:
    """`rows.read`, `rows.rejected.not_a_number`, `labels.income.positive`, …"""
    return ".".join(parts)


class _ReadTableFile(CountingDoFn):
    """Reads, parses, labels and splits every row of one file."""

    def __init__(self, spec: parsing.TableSpec, split_names: Sequence[str], buckets: Sequence[int]):
        super().__init__()
        self._spec = spec
        self._split_names = list(split_names)
        self._buckets = list(buckets)

    def process(self, path: str):
        rows = yield from (self._parquet_rows(path) if parsing.is_parquet(path) else self._csv_rows(path))
        log.info("read %d rows from %s", rows, path)

    def _csv_rows(self, path: str):
        """Every line of a CSV file: blank lines and the header counted, data rows parsed; returns rows."""
        spec = self._spec
        columns = spec.columns
        rows = 0
        for line, payload in parsing.read_table_file(path):
            if payload is None:
                self.count(count_key(parsing.ROWS, "blank_lines"))
                continue
            if not columns:
                columns = parsing.header_columns(payload, spec, path)
                self.count(count_key(parsing.ROWS, "header_lines"))
                continue
            rows += 1
            fields, invalid = parsing.split_fields(payload, spec.delimiter)
            yield from self._row(path, line, columns, fields, invalid, payload)
        return rows

    def _parquet_rows(self, path: str):
        """Every row of a Parquet file, its row number (from 1) as its line. Returns rows read."""
        columns, records = parsing.read_parquet_file(path, self._spec)
        rows = 0
        for line, record in records:
            rows += 1
            fields, invalid = parsing.parquet_fields(record, columns)
            yield from self._row(path, line, columns, fields, invalid, record)
        return rows

    def _row(self, path: str, line: int, columns: Sequence[str], fields: list[str] | None,
             invalid: Invalid | None, payload: Any):
        """One data row, read and counted: a tf.Example in its split, or a rejected record."""
        spec = self._spec
        self.count(count_key(parsing.ROWS, "read"))
        record = None
        if invalid is None:
            record, invalid = parsing.parse_row(fields, columns, spec)
        if invalid is not None:
            self.count(count_key(parsing.ROWS, "rejected", invalid.reason))
            yield beam.pvalue.TaggedOutput(REJECTED, rejection(parsing.ROWS, path, line, invalid,
                                                               raw_text(payload)))
            return
        for label in spec.labels:
            self.count(count_key("labels", label, "positive"), record[label])
        split = parsing.split_index(spec.split_seed, path, line, self._buckets)
        yield beam.pvalue.TaggedOutput(self._split_names[split], parsing.to_example(record, spec))


class ReadTable(beam.PTransform):
    """Every row of `files` as a serialized tf.Example in its split, or as a rejected record.

    Returns a dict of PCollections: one per split name, `rejected` (dicts, see
    core.records.rejection, with log = "rows") and `counts` ((count key, n) pairs).
    """

    def __init__(self, files: list[str], spec: parsing.TableSpec, split_names: Sequence[str],
                 buckets: Sequence[int]):
        super().__init__()
        if REJECTED in split_names or COUNTS in split_names:
            raise ValueError(f"split names {list(split_names)} may not be {REJECTED!r} or {COUNTS!r}")
        self._files = files
        self._spec = spec
        self._split_names = list(split_names)
        self._buckets = list(buckets)

    def expand(self, pipeline: beam.Pipeline):
        read = (pipeline
                | "ListFiles" >> beam.Create(self._files)
                | "Reshuffle" >> beam.Reshuffle()
                | "ReadRows" >> beam.ParDo(_ReadTableFile(self._spec, self._split_names, self._buckets))
                .with_outputs(*self._split_names, REJECTED, COUNTS))
        return {name: read[name] for name in [*self._split_names, REJECTED, COUNTS]}
