"""One CSV or Parquet row → typed features, derived labels and a split, without Beam.

Everything here is a pure function of a row and a `TableSpec`, so the rules can be read
and tested alone; transforms.py only reads files and routes what these functions return.

Rules:
- fields are split by the csv module (quoted fields may hold the delimiter, also after the
  space the UCI census files put after every comma) and stripped of surrounding spaces;
- a numeric column must parse as a finite float; every other column is kept as a string;
- a derived label is 1 when its source column's stripped value is one of its
  `positive_values`, else 0 (int64), and is added beside the raw columns;
- a row's split is a hash of (split_seed, file name, line number) mapped onto the split
  percentages: the same seed always gives the same split, a new seed a new one, and
  moving the file to another folder changes nothing.
A row that breaks a rule is rejected with a reason (REJECTION_REASONS), never dropped.

A Parquet file (name ending in .parquet or .pq) takes the CSV path after its first step:
each row becomes the list of its column values as strings (`parquet_fields`: null → "",
numbers by `str`, text stripped), so the same rules, reasons and tf.Examples follow from
the same data. Its columns come by name from the file's schema (data.table.columns, when
set, picks them), and a row's "line" is its row number in the file, from 1.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from watchnext.core.errors import BadInputData
from watchnext.core.records import Invalid, markdown_reasons

from tfx.dsl.io import fileio

# The `log` field of this ExampleGen's rejected records and the prefix of its count keys.
ROWS = "rows"

# Why a row is rejected: {reason code: meaning}, rendered into the README.
REJECTION_REASONS: dict[str, str] = {
    "malformed_row": "The line is not UTF-8, or the csv module cannot split it (e.g. an unclosed quote); "
                     "a Parquet value is nested (a list or a struct) or not UTF-8.",
    "wrong_column_count": "The row has more or fewer fields than the table has columns.",
    "missing_number": "A numeric column is empty.",
    "not_a_number": "A numeric column does not parse as a number.",
    "non_finite": "A numeric column is NaN or infinite.",
}
# The codes by name, in the order above.
MALFORMED_ROW, WRONG_COLUMN_COUNT, MISSING_NUMBER, NOT_A_NUMBER, NON_FINITE = REJECTION_REASONS


# File names read as Parquet (any other name is CSV, gzip'd when it ends in .gz).
PARQUET_SUFFIXES = (".parquet", ".pq")
# The first bytes of every Parquet file: a CSV name on such a file is a naming mistake.
PARQUET_MAGIC = b"PAR1"


class TableError(BadInputData, ValueError):
    """A whole file cannot be read as the table (no header, missing columns, corrupt gzip or Parquet)."""


def is_parquet(path: str) -> bool:
    """Whether the table file is read as Parquet: chosen by its name, as LogExampleGen chooses."""
    return os.path.basename(path).lower().endswith(PARQUET_SUFFIXES)


@dataclass(frozen=True)
class TableSpec:
    """What TableExampleGen needs to know about the table, as one JSON exec property.

    columns: names in file order; empty when each file starts with a header row.
    numeric: columns parsed as float; the others stay strings.
    labels: {label name: (source column, positive values)}.
    required: columns that must exist (model inputs and label sources), checked per header.
    """

    columns: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    labels: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    delimiter: str = ","
    split_seed: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TableSpec:
        values = json.loads(text)
        return cls(columns=tuple(values["columns"]), numeric=tuple(values["numeric"]),
                   labels={k: (v[0], tuple(v[1])) for k, v in values["labels"].items()},
                   required=tuple(values["required"]), delimiter=values["delimiter"],
                   split_seed=int(values["split_seed"]))


def read_table_file(path: str) -> Iterator[tuple[int, bytes | None]]:
    """(line number from 1, raw line without its end) for every line; None for a blank one.

    Gzip'd when the name ends in .gz. Lines stay bytes so a bad byte is a rejected row,
    not a crash of the whole read. A Parquet file under a CSV name is a TableError that
    says so, rather than a rejection of every "line" of binary data.
    """
    try:
        with fileio.open(path, "rb") as raw:
            f = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
            for number, line in enumerate(f, start=1):
                if number == 1 and line.startswith(PARQUET_MAGIC):
                    raise TableError(f"{path}: is a Parquet file but is read as CSV: name it *.parquet "
                                     "(or *.pq)")
                line = line.rstrip(b"\r\n")
                yield number, (line if line.strip() else None)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise TableError(f"{path}: cannot be read: {e}") from e


def open_parquet(path: str) -> Any:
    """A pyarrow ParquetFile; TableError naming the file when it is not Parquet.

    pyarrow cannot read through tf.io.gfile's GFile (no `.closed`): local files are opened
    by path, remote ones (gs://, …) read into memory.
    """
    import pyarrow.parquet as pq

    source: Any = path
    try:
        if "://" in path:
            with fileio.open(path, "rb") as f:
                source = io.BytesIO(f.read())
        return pq.ParquetFile(source)
    except Exception as e:  # pyarrow raises its own error types (ArrowInvalid, …) for a corrupt file
        if isinstance(e, OSError) or type(e).__module__.startswith("pyarrow"):
            raise TableError(f"{path}: cannot be read as Parquet: {e}") from e
        raise


def read_parquet_file(path: str, spec: TableSpec) -> tuple[tuple[str, ...], Iterator[tuple[int, dict]]]:
    """(the table's columns, an iterator of (row number from 1, row dict)) of one Parquet file.

    The columns are spec.columns when set (each must be in the file's schema), else the
    schema's names, checked as a CSV header is (`check_columns`).
    """
    parquet = open_parquet(path)
    names = list(parquet.schema_arrow.names)
    if spec.columns:
        missing = [c for c in spec.columns if c not in names]
        if missing:
            raise TableError(f"{path}: the Parquet file has no column {missing} (named in "
                             f"data.table.columns); it has {names}")
        columns = tuple(spec.columns)
    else:
        columns = check_columns(names, spec, path, "the Parquet schema")

    def rows() -> Iterator[tuple[int, dict]]:
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=10000, columns=list(columns)):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
        except Exception as e:
            if isinstance(e, OSError) or type(e).__module__.startswith("pyarrow"):
                raise TableError(f"{path}: cannot be read as Parquet (after row {number}): {e}") from e
            raise

    return columns, rows()


def parquet_fields(record: dict, columns: Sequence[str]) -> tuple[list[str] | None, Invalid | None]:
    """A Parquet row's values as the stripped strings a CSV line of the same data splits into.

    null → "" (a numeric column then is `missing_number`, as an empty CSV field); numbers by
    `str` (which round-trips a float); bytes must be UTF-8; a list or struct is malformed.
    """
    fields = []
    for name in columns:
        value = record[name]
        if value is None:
            fields.append("")
        elif isinstance(value, bytes):
            try:
                fields.append(value.decode("utf-8").strip())
            except UnicodeDecodeError as e:
                return None, Invalid(MALFORMED_ROW, name, f"not UTF-8: {e}")
        elif isinstance(value, (list, dict, tuple)):
            return None, Invalid(MALFORMED_ROW, name, f"a nested value ({type(value).__name__}), "
                                                      "not a scalar")
        else:
            fields.append(str(value).strip())
    return fields, None


def split_fields(payload: bytes, delimiter: str) -> tuple[list[str] | None, Invalid | None]:
    """The stripped fields of one line, or (None, why)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, Invalid(MALFORMED_ROW, "", f"not UTF-8: {e}")
    try:
        rows = list(csv.reader([text], delimiter=delimiter, skipinitialspace=True, strict=True))
    except csv.Error as e:
        return None, Invalid(MALFORMED_ROW, "", str(e))
    if len(rows) != 1:
        return None, Invalid(MALFORMED_ROW, "", f"{len(rows)} rows in one line")
    return [value.strip() for value in rows[0]], None


def header_columns(payload: bytes, spec: TableSpec, path: str) -> tuple[str, ...]:
    """A header row's column names; TableError when it cannot be one or lacks a required column."""
    names, invalid = split_fields(payload, spec.delimiter)
    if invalid is not None or not names:
        raise TableError(f"{path}: line 1 should be the header row (data.table.columns is empty): "
                         f"{invalid.detail if invalid else 'empty'}")
    return check_columns(names, spec, path, "the header")


def check_columns(names: Sequence[str], spec: TableSpec, path: str, what: str) -> tuple[str, ...]:
    """The column names of a header or Parquet schema, when they hold what the config needs."""
    names = list(names)
    missing = [c for c in spec.required if c not in names]
    if missing:
        raise TableError(f"{path}: {what} has no column {missing} (needed by features or heads in the "
                         f"config); it has {names}")
    if len(set(names)) != len(names):
        raise TableError(f"{path}: {what} repeats column names: {names}")
    clash = [label for label, (source, _) in spec.labels.items() if label in names and label != source]
    if clash:
        raise TableError(f"{path}: derived label(s) {clash} are also columns of the table; rename the heads' "
                         "labels")
    return tuple(names)


def parse_row(fields: Sequence[str], columns: Sequence[str], spec: TableSpec
              ) -> tuple[dict[str, Any] | None, Invalid | None]:
    """Typed values of one row plus its derived labels, or (None, why)."""
    if len(fields) != len(columns):
        return None, Invalid(WRONG_COLUMN_COUNT, "", f"{len(fields)} fields, expected {len(columns)}")
    numeric = set(spec.numeric)
    record: dict[str, Any] = {}
    for name, value in zip(columns, fields, strict=True):
        if name not in numeric:
            record[name] = value
            continue
        if value == "":
            return None, Invalid(MISSING_NUMBER, name, "empty")
        try:
            number = float(value)
        except ValueError:
            return None, Invalid(NOT_A_NUMBER, name, repr(value))
        if not math.isfinite(number):
            return None, Invalid(NON_FINITE, name, value)
        record[name] = number
    for label, (source, positives) in spec.labels.items():
        record[label] = int(fields[columns.index(source)] in positives)
    return record, None


def split_index(seed: int, path: str, line: int, buckets: Sequence[int]) -> int:
    """Which split a row goes to: a hash of (seed, file name, line) into cumulative percent buckets.

    `buckets` are the cumulative upper bounds of the splits (e.g. [50, 75, 100]).
    """
    digest = hashlib.sha256(f"{seed}\0{os.path.basename(path)}\0{line}".encode()).digest()
    value = int.from_bytes(digest[:8], "big") % buckets[-1]
    for i, bound in enumerate(buckets):
        if value < bound:
            return i
    raise AssertionError("unreachable: value < buckets[-1]")


def to_example(record: dict[str, Any], spec: TableSpec) -> bytes:
    """A serialized tf.train.Example: strings as bytes_list, numbers as float_list, labels as int64_list."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    feature = example.features.feature
    for name, value in record.items():
        if name in spec.labels:
            feature[name].int64_list.value.append(value)
        elif isinstance(value, float):
            feature[name].float_list.value.append(value)
        else:
            feature[name].bytes_list.value.append(value.encode())
    return example.SerializeToString()


def markdown_rejection_reasons() -> str:
    """The table's rejection reasons as a Markdown table (rendered into the README)."""
    return markdown_reasons(REJECTION_REASONS)
