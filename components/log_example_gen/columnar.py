"""The vectorised ingestion path: blocks of JSON lines as Arrow tables, validated and joined by column.

Per-record Python (json.loads, a dict per record, `join.join_key` per key, a tf.Example built
field by field) costs ~0.5 ms per impression inside Beam; this module does the same work by
column, so that Python runs per block and per shard rather than per record:

- `parse_block`: a block of JSON lines → an Arrow table (pyarrow's JSON reader, with the
  log's schema as explicit types). Any block the reader refuses (a malformed line, a wrong
  type, a non-UTF-8 byte, two objects on a line, …) returns None and the caller falls back
  to the per-line path (reading.decode + schema.validate_*) for that block.
- `clean_mask`: which rows pass every check of schema.validate_* (by column). It is
  conservative: a row it does not pass is re-validated by the per-line code, which names
  the reason, so reasons and details are the per-line path's by construction.
- `join_shard`: the join of all records whose request_id hashes to one shard. Keys whose
  records are simple (one valid impression, no rejected copy, no duplicate event, no watch
  over the duration bound) are labelled by column; every other key, and every event without
  a simple key (orphans, events of rejected impressions), goes through `join.join_key`, the
  reference rules. tf.Examples are serialized in C++ (tfx_bsl's RecordBatchToExamplesEncoder).

The per-line path stays the reference: `transforms.JoinLogsToExamples(..., vectorised=False)`
runs it for every record, and tests check that both give the same examples, rejections and
counts on the bad-input fixtures.
"""

from __future__ import annotations

import collections
import io
import zlib
from dataclasses import dataclass, field
from typing import Any

from watchnext.components.log_example_gen import join
from watchnext.core import log_schema as schema

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
_FIELDS = {schema.IMPRESSIONS_LOG: schema.IMPRESSION_FIELDS, schema.EVENTS_LOG: schema.EVENT_FIELDS}


def arrow_schema(log_name: str) -> pa.Schema:
    """The log's fields as Arrow types (ints int64, floats float64, lists of strings), plus LINE."""
    return pa.schema([pa.field(f.name, _ARROW_TYPES[f.type]) for f in _FIELDS[log_name]]
                     + [pa.field(LINE, pa.int64())])


def _parse_schema(log_name: str) -> pa.Schema:
    return pa.schema([pa.field(f.name, _ARROW_TYPES[f.type]) for f in _FIELDS[log_name]])


def parse_block(log_name: str, payloads: list[bytes], lines: list[int]) -> pa.Table | None:
    """JSON lines → a table with the log's columns and LINE, or None when the reader refuses the
    block (then every line of it takes the per-line path). Fields outside the schema are ignored,
    as by schema.validate_record."""
    options = pa_json.ParseOptions(explicit_schema=_parse_schema(log_name),
                                   unexpected_field_behavior="ignore")
    try:
        table = pa_json.read_json(io.BytesIO(b"\n".join(payloads)), parse_options=options,
                                  read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 26))
    except Exception:  # ArrowInvalid, UnicodeDecodeError, …: the per-line path names the problem
        return None
    if table.num_rows != len(payloads):  # e.g. two objects on one line: not one record per line
        return None
    return table.append_column(LINE, pa.array(lines, pa.int64()))


def _np(col: Any) -> np.ndarray:
    """An Arrow array or chunked array as numpy (nulls of a float column become NaN)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def _as_bool(mask: Any) -> np.ndarray:
    """A boolean Arrow array with nulls read as False, as numpy."""
    return np.asarray(_np(pc.fill_null(mask, False)), dtype=bool)


def _field_ok(f: schema.Field, col: pa.ChunkedArray) -> np.ndarray:
    """Rows where this column passes schema._coerce and schema._check_bounds (null: only if optional)."""
    n = len(col)
    present = _as_bool(pc.is_valid(col))
    ok = present.copy() if f.required else np.ones(n, dtype=bool)
    if f.type == "float":
        ok &= ~present | _as_bool(pc.is_finite(col))
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
        ok &= ~present | _as_bool(check)
    return ok


def clean_mask(log_name: str, table: pa.Table, max_position: int = schema.MAX_POSITION) -> np.ndarray:
    """Rows that schema.validate_impression / validate_event would accept (numpy bool)."""
    ok = np.ones(table.num_rows, dtype=bool)
    for f in _FIELDS[log_name]:
        ok &= _field_ok(f, table.column(f.name))
    if log_name == schema.IMPRESSIONS_LOG:
        ok &= _as_bool(pc.less(table.column("position"), max_position))
        return ok
    kind, value = table.column("event"), table.column("value")
    watch = _as_bool(pc.equal(kind, schema.WATCH_EVENT))
    survey = _as_bool(pc.equal(kind, schema.SURVEY_EVENT))
    present = _as_bool(pc.is_valid(value))
    ok &= ~(watch | survey) | present
    ok &= ~watch | (_as_bool(pc.greater_equal(value, 0.0))
                    & _as_bool(pc.less_equal(value, schema.MAX_WATCH_SECONDS)))
    ok &= ~survey | (_as_bool(pc.greater_equal(value, schema.MIN_RATING))
                     & _as_bool(pc.less_equal(value, schema.MAX_RATING)))
    return ok


def clean_events(table: pa.Table) -> pa.Table:
    """Valid events with `value` set to null for click, like and dismiss (as validate_event does)."""
    kind = table.column("event")
    keep = pc.or_(pc.equal(kind, schema.WATCH_EVENT), pc.equal(kind, schema.SURVEY_EVENT))
    value = pc.if_else(keep, table.column("value"), pa.scalar(None, pa.float64()))
    return table.set_column(table.schema.get_field_index("value"), "value", value)


def records_table(log_name: str, records: list[dict[str, Any]], lines: list[int]) -> pa.Table:
    """Clean records from the per-line path (schema.validate_*) as a table of the same schema."""
    names = [f.name for f in _FIELDS[log_name]]
    columns = {name: [r[name] for r in records] for name in names}
    columns[LINE] = lines
    return pa.Table.from_pydict(columns, schema=arrow_schema(log_name))


def shard_of(request_ids: pa.ChunkedArray | pa.Array, shards: int) -> np.ndarray:
    """The join shard of each row: crc32 of its request_id mod `shards` (stable across processes,
    unlike Python's hash; computed once per distinct request_id)."""
    encoded = pc.dictionary_encode(request_ids)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    per_value = np.array([zlib.crc32(v.encode()) % shards for v in encoded.dictionary.to_pylist()],
                         dtype=np.int64)
    return per_value[_np(encoded.indices)] if len(per_value) else \
        np.zeros(len(request_ids), dtype=np.int64)


@dataclass
class Block:
    """What one file contributes to one join shard: its valid records as a table, and the
    (request_id, candidate_video_id, line) of impressions rejected while parsing (tombstones)."""

    log: str
    source: str
    table: pa.Table
    tombstones: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class ShardResult:
    """A shard's serialized tf.Examples with their request_ids, rejected records and count keys."""

    examples: list[bytes] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    counts: collections.Counter = field(default_factory=collections.Counter)


def _concat(blocks: list[Block], log_name: str, source_index: dict[str, int]) -> pa.Table:
    tables = []
    for b in blocks:
        if b.log == log_name and b.table.num_rows:
            tables.append(b.table.append_column(SOURCE, pa.array(
                np.full(b.table.num_rows, source_index[b.source], dtype=np.int64))))
    if not tables:
        return arrow_schema(log_name).append(pa.field(SOURCE, pa.int64())).empty_table()
    return pa.concat_tables(tables)


def _located(table: pa.Table, rows: list[int], sources: list[str], log_name: str
             ) -> dict[int, join.Located]:
    """Rows (by index) as (source, line, clean record) for join.join_key, converted in one go."""
    if not rows:
        return {}
    names = [f.name for f in _FIELDS[log_name]]
    picked = table.take(pa.array(rows, pa.int64())).to_pydict()
    return {row: (sources[picked[SOURCE][i]], picked[LINE][i], {name: picked[name][i] for name in names})
            for i, row in enumerate(rows)}


_ENCODER = None


def _encoder() -> Any:
    global _ENCODER
    if _ENCODER is None:
        from tfx_bsl.coders import example_coder

        _ENCODER = example_coder.RecordBatchToExamplesEncoder()
    return _ENCODER


def _list_column(values: Any, arrow_type: pa.DataType) -> pa.Array:
    """One value per row as a list array of length-1 lists (what the encoder expects)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    array = (values if isinstance(values, pa.Array) else pa.array(values)).cast(arrow_type)
    offsets = pa.array(np.arange(len(array) + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, array)


def encode_examples(impressions: pa.Table, labels: dict[str, np.ndarray]) -> list[bytes]:
    """Serialized tf.Examples of `impressions` (every impression field) and their labels, typed as
    join.to_example types them (strings as bytes, ints int64, floats float32)."""
    arrow_type = {"string": pa.binary(), "int": pa.int64(), "float": pa.float32()}
    columns, names = [], []
    for f in schema.IMPRESSION_FIELDS + schema.LABEL_FIELDS:
        values = labels[f.name] if f.name in labels else impressions.column(f.name)
        if f.type == "string_list":
            col = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
            columns.append(col.cast(pa.list_(pa.binary())))
        else:
            columns.append(_list_column(values, arrow_type[f.type]))
        names.append(f.name)
    if not impressions.num_rows:
        return []
    return _encoder().encode(pa.RecordBatch.from_arrays(columns, names))


def _keys(table: pa.Table, rows: np.ndarray) -> list[tuple[str, str]]:
    """The join keys (request_id, candidate_video_id) of some rows, as Python tuples."""
    if not len(rows):
        return []
    picked = table.select(["request_id", "candidate_video_id"]).take(pa.array(rows))
    return list(zip(picked.column(0).to_pylist(), picked.column(1).to_pylist(), strict=True))


def _key_string(request_id: str, candidate_video_id: str) -> str:
    """One join key as a string; the length prefix makes it unambiguous whatever the ids hold."""
    return f"{len(request_id)}:{request_id}{candidate_video_id}"


def _key_strings(table: pa.Table) -> pa.Array:
    """_key_string of every row, by column (utf8_length counts code points, as len() does)."""
    rid, cid = table.column("request_id"), table.column("candidate_video_id")
    keys = pc.binary_join_element_wise(pc.cast(pc.utf8_length(rid), pa.string()), ":", rid, cid, "")
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


def _event_rows(imp_key: pa.Array, simple: np.ndarray, ev_key: pa.Array) -> np.ndarray:
    """For each event, the row of its impression if that impression is labelled by column, else -1."""
    rows = np.flatnonzero(simple)
    if not len(rows) or not len(ev_key):
        return np.full(len(ev_key), -1, dtype=np.int64)
    found = _np(pc.fill_null(pc.index_in(ev_key, value_set=imp_key.filter(pa.array(simple))), -1))
    found = found.astype(np.int64)
    return np.where(found >= 0, rows[np.maximum(found, 0)], -1)


def join_shard(blocks: list[Block], vectorised: bool = True) -> ShardResult:
    """Join every record of one shard (all records of a key are in the same shard).

    vectorised=False sends every key through join.join_key and join.to_example (the reference).
    """
    out = ShardResult()
    sources = sorted({b.source for b in blocks})
    source_index = {s: i for i, s in enumerate(sources)}
    imp = _concat(blocks, schema.IMPRESSIONS_LOG, source_index)
    ev = _concat(blocks, schema.EVENTS_LOG, source_index)
    tombstones: dict[tuple[str, str], list[tuple[str, int]]] = collections.defaultdict(list)
    for b in blocks:
        for rid, cid, line in b.tombstones:
            tombstones[(rid, cid)].append((b.source, line))

    # Keys as strings "<len(request_id)>:<request_id><candidate_video_id>" (unambiguous), by column.
    imp_key, ev_key = _key_strings(imp), _key_strings(ev)
    simple = np.zeros(imp.num_rows, dtype=bool)  # impressions labelled by column
    if vectorised and imp.num_rows:
        codes = _np(pc.dictionary_encode(imp_key).indices)
        simple = np.bincount(codes)[codes] == 1  # the only impression with its key …
        if tombstones:  # … and no copy of it was rejected while parsing
            rejected = pa.array([_key_string(*k) for k in tombstones], pa.string())
            simple &= ~_as_bool(pc.is_in(imp_key, value_set=rejected))
    ev_index = _event_rows(imp_key, simple, ev_key)
    kinds = {k: _as_bool(pc.equal(ev.column("event"), k)) for k in schema.EVENT_TYPES}
    values = _np(ev.column("value")).astype(np.float64)  # null → nan
    if vectorised and ev.num_rows:
        # Keys with an exact duplicate event or a watch over the duration bound take join_key.
        identity = ["request_id", "candidate_video_id", "event", "timestamp", "value"]
        copies = ev.select([*identity, LINE]).group_by(identity).aggregate([(LINE, "count")])
        duplicated = copies.filter(pc.greater(copies.column(f"{LINE}_count"), 1))
        over = (ev_index >= 0) & kinds[schema.WATCH_EVENT]
        duration = _np(imp.column("video_duration"))
        over[over] = values[over] > schema.MAX_WATCH_DURATION_RATIO * duration[ev_index[over]]
        complicated = pa.concat_arrays([_key_strings(duplicated), ev_key.filter(pa.array(over))])
        if len(complicated):
            simple &= ~_as_bool(pc.is_in(imp_key, value_set=complicated))
            ev_index = _event_rows(imp_key, simple, ev_key)

    # The reference join for every key not labelled by column.
    slow_imp: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    slow_rows = np.flatnonzero(~simple)
    for i, k in zip(slow_rows.tolist(), _keys(imp, slow_rows), strict=True):
        slow_imp[k].append(i)
    slow_ev: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    slow_rows = np.flatnonzero(ev_index < 0)
    for i, k in zip(slow_rows.tolist(), _keys(ev, slow_rows), strict=True):
        slow_ev[k].append(i)
    imp_records = _located(imp, [i for rows in slow_imp.values() for i in rows], sources,
                           schema.IMPRESSIONS_LOG)
    ev_records = _located(ev, [i for rows in slow_ev.values() for i in rows], sources, schema.EVENTS_LOG)
    for key in sorted(set(slow_imp) | set(slow_ev) | set(tombstones)):
        located = [imp_records[i] for i in slow_imp.get(key, [])]
        located += [(s, line, None) for s, line in tombstones.get(key, [])]
        result = join.join_key(located, [ev_records[i] for i in slow_ev.get(key, [])])
        out.rejected += result.rejected
        out.counts.update(result.counts)
        if result.features is not None:
            out.examples.append(join.to_example(result.features).SerializeToString())
            out.request_ids.append(result.features["request_id"])
    if not simple.any():
        return out

    # Column-wise labels for the simple keys (join.labels, by column).
    rows = np.flatnonzero(simple)
    position = np.full(imp.num_rows, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    has = ev_index >= 0
    order = np.lexsort((_np(ev.column(LINE)), _np(ev.column(SOURCE))))
    order = order[has[order]]  # merged events in (file, line) order, as join_key sorts them
    target = position[ev_index[order]]
    kind = {k: mask[order] for k, mask in kinds.items()}
    n = len(rows)

    def any_of(event: str) -> np.ndarray:
        return (np.bincount(target[kind[event]], minlength=n) > 0).astype(np.int64)

    watch = np.zeros(n, dtype=np.float64)
    is_watch = kind[schema.WATCH_EVENT]
    np.add.at(watch, target[is_watch], values[order][is_watch])  # in (file, line) order, like sum()
    rating = np.zeros(n, dtype=np.float64)
    rating_present = np.zeros(n, dtype=np.int64)
    is_survey = kind[schema.SURVEY_EVENT]
    if is_survey.any():
        s = order[is_survey]
        ts = _np(ev.column("timestamp"))[s]
        # The latest survey by (timestamp, file, line): the last of each target in that order.
        by = np.lexsort((_np(ev.column(LINE))[s], _np(ev.column(SOURCE))[s], ts, target[is_survey]))
        t = target[is_survey][by]
        last = np.r_[t[1:] != t[:-1], True]
        rating[t[last]] = values[s][by][last]
        rating_present[t[last]] = 1
    labels = {schema.CLICK: any_of(schema.CLICK_EVENT), schema.WATCH_TIME: watch,
              schema.LIKE: any_of(schema.LIKE_EVENT), schema.DISMISS: any_of(schema.DISMISS_EVENT),
              schema.RATING: rating, schema.RATING_PRESENT: rating_present}
    out.counts[join.counter_name(schema.EVENTS_LOG, "merged")] += len(order)
    for event, mask in kind.items():
        if mask.any():
            out.counts[join.counter_name(schema.EVENTS_LOG, "merged", event)] += int(mask.sum())
    without_click = int(((watch > 0) & (labels[schema.CLICK] == 0)).sum())
    if without_click:
        out.counts["examples.watch_without_click"] += without_click
    picked = imp.take(pa.array(rows))
    out.examples += encode_examples(picked, labels)
    out.request_ids += picked.column("request_id").to_pylist()
    return out
