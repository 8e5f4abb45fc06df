"""TableExampleGen's Beam work as one named PTransform.

    ReadTable(files, spec, split_names, buckets) → {split: serialized tf.Examples,
                                                    rejected: dicts, counts: (key, n)}

Each file is read by one DoFn call, line by line, so a rejected row keeps its file and
line (Beam's text sources do not report them; see log_example_gen/reading.py). Count
keys: `rows.read`, `rows.blank_lines`, `rows.header_lines`, `rows.rejected.<reason>`,
`labels.<label>.positive`; the executor adds `examples.<split>` by counting what reaches
each writer. Counting, the rejected-records format and the writers are the ExampleGen
base's (components/example_gen/).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from watchnext.components.example_gen.transforms import COUNTS, REJECTED, CountingDoFn
from watchnext.components.table_example_gen import parsing
from watchnext.core.records import raw_text, rejection

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
            self.count(count_key(parsing.ROWS, "read"))
            fields, invalid = parsing.split_fields(payload, spec.delimiter)
            record = None
            if invalid is None:
                record, invalid = parsing.parse_row(fields, columns, spec)
            if invalid is not None:
                self.count(count_key(parsing.ROWS, "rejected", invalid.reason))
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(
                    parsing.ROWS, path, line, invalid, raw_text(payload)))
                continue
            for label in spec.labels:
                self.count(count_key("labels", label, "positive"), record[label])
            split = parsing.split_index(spec.split_seed, path, line, self._buckets)
            yield beam.pvalue.TaggedOutput(self._split_names[split], parsing.to_example(record, spec))
        log.info("read %d rows from %s", rows, path)


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
