"""The vectorised ingestion path: blocks of JSON lines as Arrow tables, validated and joined by column.

Per-record Python (json.loads, a dict per record, `join.join_key` per key, a tf.Example built
field by field) costs ~0.5 ms per impression inside Beam; this module does the same work by
column, so that Python runs per block and per shard rather than per record:

- `parse_block`: a block of JSON lines → an Arrow table (pyarrow's JSON reader, with the
  log's schema as explicit types). Any block the reader refuses (a malformed line, a wrong
  type, a non-UTF-8 byte, two objects on a line, …) returns None and the caller falls back
  to the per-line path (reading.decode + validation.validate_*) for that block.
- `clean_mask`: which rows pass every check of validation.validate_* (by column). It is
  conservative: a row it does not pass is re-validated by the per-line code, which names
  the reason, so reasons and details are the per-line path's by construction.
- `shard_of` and `Block`: the join shard of each row, and what one file gives one shard;
  columnar_join.py joins a shard's blocks by column.

Declared schemas (a LogSchema other than the default) are vectorised too: the columns, types,
bounds, allowed values and required fields are the schema's (an optional field absent or null
stays null in the table and is filled with its `fill_value` when the example is encoded, as
join.to_example does), the position bound applies to the schema's position field if it has
one, and events keep a `value` only for the types a sum or last label reads. The default
schema's extra event checks (watch and survey bounds) stay default-only, as in validation.py.

The per-line path stays the reference: `transforms.JoinLogsToExamples(..., vectorised=False)`
runs it for every record, and tests check that both give the same examples, rejections and
counts on the bad-input fixtures.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from watchnext.core import log_schema as schema
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LogSchema

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

# Column holding each row's line (or Parquet row) number in its file.
LINE = "_line"
# Column holding each row's file as an index into the shard's sorted file list (join only).
SOURCE = "_source"

_ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(),
                "string_list": pa.list_(pa.string())}


def log_fields(log_name: str, log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> tuple[schema.Field, ...]:
    """The fields of one log (impressions or events) under `log_schema`."""
    return log_schema.impressions if log_name == schema.IMPRESSIONS_LOG else log_schema.event_fields


def arrow_schema(log_name: str, log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> pa.Schema:
    """The log's fields as Arrow types (ints int64, floats float64, lists of strings), plus LINE."""
    return pa.schema([pa.field(f.name, _ARROW_TYPES[f.type]) for f in log_fields(log_name, log_schema)]
                     + [pa.field(LINE, pa.int64())])


def _parse_schema(log_name: str, log_schema: LogSchema) -> pa.Schema:
    return pa.schema([pa.field(f.name, _ARROW_TYPES[f.type]) for f in log_fields(log_name, log_schema)])


def parse_block(log_name: str, payloads: list[bytes], lines: list[int],
                log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> pa.Table | None:
    """JSON lines → a table with the log's columns and LINE, or None when the reader refuses the
    block (then every line of it takes the per-line path). Fields outside the schema are ignored,
    as by validation.validate_record."""
    options = pa_json.ParseOptions(explicit_schema=_parse_schema(log_name, log_schema),
                                   unexpected_field_behavior="ignore")
    try:
        table = pa_json.read_json(io.BytesIO(b"\n".join(payloads)), parse_options=options,
                                  read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 26))
    except Exception:  # ArrowInvalid, UnicodeDecodeError, …: the per-line path names the problem
        return None
    if table.num_rows != len(payloads):  # e.g. two objects on one line: not one record per line
        return None
    return table.append_column(LINE, pa.array(lines, pa.int64()))


def as_numpy(col: Any) -> np.ndarray:
    """An Arrow array or chunked array as numpy (nulls of a float column become NaN)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def as_bool(mask: Any) -> np.ndarray:
    """A boolean Arrow array with nulls read as False, as numpy."""
    return np.asarray(as_numpy(pc.fill_null(mask, False)), dtype=bool)


def _field_ok(f: schema.Field, col: pa.ChunkedArray) -> np.ndarray:
    """Rows where this column passes validation._coerce and _check_bounds (null: only if optional)."""
    n = len(col)
    present = as_bool(pc.is_valid(col))
    ok = present.copy() if f.required else np.ones(n, dtype=bool)
    if f.type == "float":
        ok &= ~present | as_bool(pc.is_finite(col))
    if f.type == "string_list":
        flat = pc.list_flatten(col)
        if flat.null_count:  # a null inside a list is a wrong_type: leave the block to the per-line path
            return np.zeros(n, dtype=bool)
    checks = []
    if f.allowed:
        checks.append(pc.is_in(col, value_set=pa.array(f.allowed, pa.string())))
    elif f.type == "string":
        checks.append(pc.greater(pc.binary_length(col), 0))
    if f.minimum is not None:
        checks.append(pc.greater(col, f.minimum) if f.exclusive_minimum else pc.greater_equal(col, f.minimum))
    if f.maximum is not None:
        checks.append(pc.less_equal(col, f.maximum))
    if f.max_items is not None:
        checks.append(pc.less_equal(pc.list_value_length(col), f.max_items))
    for check in checks:
        ok &= ~present | as_bool(check)
    return ok


def clean_mask(log_name: str, table: pa.Table, max_position: int = schema.MAX_POSITION,
               log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> np.ndarray:
    """Rows that validation.validate_impression / validate_event would accept (numpy bool)."""
    ok = np.ones(table.num_rows, dtype=bool)
    for f in log_fields(log_name, log_schema):
        ok &= _field_ok(f, table.column(f.name))
    if log_name == schema.IMPRESSIONS_LOG:
        if log_schema.position:  # an absent optional position is not bounded
            position = table.column(log_schema.position)
            ok &= ~as_bool(pc.is_valid(position)) | as_bool(pc.less(position, max_position))
        return ok
    kind, value = table.column("event"), table.column("value")
    if not log_schema.is_default:  # validation._validate_declared_event
        valued = [rule.event for rule in log_schema.labels if rule.needs_value]
        needs = as_bool(pc.is_in(kind, value_set=pa.array(valued, pa.string())))
        return ok & (~needs | as_bool(pc.is_valid(value)))
    watch = as_bool(pc.equal(kind, schema.WATCH_EVENT))
    survey = as_bool(pc.equal(kind, schema.SURVEY_EVENT))
    present = as_bool(pc.is_valid(value))
    ok &= ~(watch | survey) | present
    ok &= ~watch | (as_bool(pc.greater_equal(value, 0.0))
                    & as_bool(pc.less_equal(value, schema.MAX_WATCH_SECONDS)))
    ok &= ~survey | (as_bool(pc.greater_equal(value, schema.MIN_RATING))
                     & as_bool(pc.less_equal(value, schema.MAX_RATING)))
    return ok


def clean_events(table: pa.Table, log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> pa.Table:
    """Valid events with `value` set to null for the types whose value no label reads (click, like
    and dismiss for the default schema; for a declared one, all but sum and last events), as
    validate_event does."""
    kind = table.column("event")
    if log_schema.is_default:
        keep = pc.or_(pc.equal(kind, schema.WATCH_EVENT), pc.equal(kind, schema.SURVEY_EVENT))
    else:
        valued = [rule.event for rule in log_schema.labels if rule.needs_value]
        keep = pc.is_in(kind, value_set=pa.array(valued, pa.string()))
    value = pc.if_else(keep, table.column("value"), pa.scalar(None, pa.float64()))
    return table.set_column(table.schema.get_field_index("value"), "value", value)


def records_table(log_name: str, records: list[dict[str, Any]], lines: list[int],
                  log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> pa.Table:
    """Clean records from the per-line path (validation.validate_*) as a table of the same schema
    (a missing optional field is null)."""
    names = [f.name for f in log_fields(log_name, log_schema)]
    columns = {name: [r[name] for r in records] for name in names}
    columns[LINE] = lines
    return pa.Table.from_pydict(columns, schema=arrow_schema(log_name, log_schema))


def shard_of(request_ids: pa.ChunkedArray | pa.Array, shards: int) -> np.ndarray:
    """The join shard of each row: crc32 of its request_id (the first key field) mod `shards`
    (stable across processes, unlike Python's hash; computed once per distinct value)."""
    encoded = pc.dictionary_encode(request_ids)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    per_value = np.array([zlib.crc32(v.encode()) % shards for v in encoded.dictionary.to_pylist()],
                         dtype=np.int64)
    return per_value[as_numpy(encoded.indices)] if len(per_value) else \
        np.zeros(len(request_ids), dtype=np.int64)


@dataclass
class Block:
    """What one file contributes to one join shard: its valid records as a table, and the
    (key fields..., line) of impressions rejected while parsing (tombstones; the key is
    (request_id, candidate_video_id) for the default schema)."""

    log: str
    source: str
    table: pa.Table
    tombstones: list[tuple[str, str, int]] = field(default_factory=list)


# Where a spilled Block keeps its non-table fields: the table schema's metadata.
_BLOCK_METADATA = b"watchnext.block"
# lz4 frames: a few % of the join's CPU, a third of the bytes of the raw Arrow buffers.
_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def spill_block(block: Block, folder: str, shard: int) -> str:
    """Write `block` to a new Arrow IPC file under `folder`/shard-NNNNN/; return its path.

    The file is the block's table with its log, source and tombstones in the schema's
    metadata, so it reads back as the same Block (`load_block`). Each call writes a file of
    its own (a random name), so a retried bundle never overwrites what another attempt
    wrote; files no shard reads are removed with the folder.
    """
    from tfx.dsl.io import fileio

    directory = os.path.join(folder, f"shard-{shard:05d}")
    fileio.makedirs(directory)
    path = os.path.join(directory, f"{block.log}-{uuid.uuid4().hex}.arrow")
    extra = json.dumps({"log": block.log, "source": block.source, "tombstones": block.tombstones})
    table = block.table.replace_schema_metadata({**(block.table.schema.metadata or {}),
                                                 _BLOCK_METADATA: extra.encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_SPILL_OPTIONS) as writer:
        writer.write_table(table)
    with fileio.open(path, "wb") as f:
        f.write(sink.getvalue().to_pybytes())
    return path


def load_block(path: str) -> Block:
    """The Block `spill_block` wrote to `path`."""
    from tfx.dsl.io import fileio

    with fileio.open(path, "rb") as f:
        table = pa.ipc.open_stream(f.read()).read_all()
    metadata = dict(table.schema.metadata or {})
    extra = json.loads(metadata.pop(_BLOCK_METADATA))
    return Block(extra["log"], extra["source"], table.replace_schema_metadata(metadata or None),
                 [tuple(t) for t in extra["tombstones"]])
