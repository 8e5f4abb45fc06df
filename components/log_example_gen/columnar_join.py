"""The vectorised join of one shard: every record whose request_id hashes to the shard, by column.

`join_shard` takes the shard's blocks (columnar.Block: one file's valid records as an Arrow
table, plus tombstones of impressions rejected while parsing). Keys whose records are simple
(one valid impression, no rejected copy, no duplicate event, no watch over the duration
bound) are labelled by column; every other key, and every event without a simple key
(orphans, events of rejected impressions), goes through `join.join_key`, the reference
rules. tf.Examples are serialized in C++ (tfx_bsl's RecordBatchToExamplesEncoder).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from watchnext.components.log_example_gen import join
from watchnext.components.log_example_gen.columnar import (
    LINE,
    SOURCE,
    Block,
    arrow_schema,
    as_bool,
    as_numpy,
    log_fields,
)
from watchnext.core import log_schema as schema
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LabelRule, LogSchema

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class ShardResult:
    """A shard's serialized tf.Examples with their request_ids, rejected records and count keys."""

    examples: list[bytes] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    counts: collections.Counter = field(default_factory=collections.Counter)


def _concat(blocks: list[Block], log_name: str, source_index: dict[str, int], log_schema: LogSchema
            ) -> pa.Table:
    tables = []
    for b in blocks:
        if b.log == log_name and b.table.num_rows:
            tables.append(b.table.append_column(SOURCE, pa.array(
                np.full(b.table.num_rows, source_index[b.source], dtype=np.int64))))
    if not tables:
        return arrow_schema(log_name, log_schema).append(pa.field(SOURCE, pa.int64())).empty_table()
    return pa.concat_tables(tables)


def _located(table: pa.Table, rows: list[int], sources: list[str], log_name: str, log_schema: LogSchema
             ) -> dict[int, join.Located]:
    """Rows (by index) as (source, line, clean record) for join.join_key, converted in one go."""
    if not rows:
        return {}
    names = [f.name for f in log_fields(log_name, log_schema)]
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


def encode_examples(impressions: pa.Table, labels: dict[str, np.ndarray],
                    log_schema: LogSchema = DEFAULT_LOG_SCHEMA) -> list[bytes]:
    """Serialized tf.Examples of `impressions` (every impression field) and their labels, typed as
    join.to_example types them (strings as bytes, ints int64, floats float32; a null optional
    field holds its `fill_value`)."""
    arrow_type = {"string": pa.binary(), "int": pa.int64(), "float": pa.float32()}
    columns, names = [], []
    for f in log_schema.example_fields():
        values = labels[f.name] if f.name in labels else impressions.column(f.name)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array) and values.null_count:  # an optional field the record lacks
            values = pc.fill_null(values, pa.scalar(f.fill_value, values.type))
        if f.type == "string_list":
            columns.append(values.cast(pa.list_(pa.binary())))
        else:
            columns.append(_list_column(values, arrow_type[f.type]))
        names.append(f.name)
    if not impressions.num_rows:
        return []
    return _encoder().encode(pa.RecordBatch.from_arrays(columns, names))


def _field_label(rule: LabelRule, impressions: pa.Table, log_schema: LogSchema) -> np.ndarray:
    """join._label's `field` rule by column: the field's value (its fill_value when null), as a
    float, or with a threshold 1 when ≥ threshold."""
    f = log_schema.impression_field(rule.field)
    if f is None:
        values = np.zeros(impressions.num_rows, dtype=np.float64)
    else:
        col = impressions.column(rule.field)
        if col.null_count:
            col = pc.fill_null(col, pa.scalar(f.fill_value, col.type))
        values = as_numpy(col).astype(np.float64)
    if rule.threshold is not None:
        return (values >= rule.threshold).astype(np.int64)
    return values


def _keys(table: pa.Table, rows: np.ndarray, key: tuple[str, str]) -> list[tuple[str, str]]:
    """The join keys (e.g. request_id, candidate_video_id) of some rows, as Python tuples."""
    if not len(rows):
        return []
    picked = table.select(list(key)).take(pa.array(rows))
    return list(zip(picked.column(0).to_pylist(), picked.column(1).to_pylist(), strict=True))


def _key_string(request_id: str, candidate_video_id: str) -> str:
    """One join key as a string; the length prefix makes it unambiguous whatever the ids hold."""
    return f"{len(request_id)}:{request_id}{candidate_video_id}"


def _key_strings(table: pa.Table, key: tuple[str, str]) -> pa.Array:
    """_key_string of every row, by column (utf8_length counts code points, as len() does)."""
    rid, cid = table.column(key[0]), table.column(key[1])
    keys = pc.binary_join_element_wise(pc.cast(pc.utf8_length(rid), pa.string()), ":", rid, cid, "")
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


def _event_rows(imp_key: pa.Array, simple: np.ndarray, ev_key: pa.Array) -> np.ndarray:
    """For each event, the row of its impression if that impression is labelled by column, else -1."""
    rows = np.flatnonzero(simple)
    if not len(rows) or not len(ev_key):
        return np.full(len(ev_key), -1, dtype=np.int64)
    found = as_numpy(pc.fill_null(pc.index_in(ev_key, value_set=imp_key.filter(pa.array(simple))), -1))
    found = found.astype(np.int64)
    return np.where(found >= 0, rows[np.maximum(found, 0)], -1)


def join_shard(blocks: list[Block], vectorised: bool = True, log_schema: LogSchema = DEFAULT_LOG_SCHEMA
               ) -> ShardResult:
    """Join every record of one shard (all records of a key are in the same shard).

    vectorised=False sends every key through join.join_key and join.to_example (the reference).
    """
    key = log_schema.key
    out = ShardResult()
    sources = sorted({b.source for b in blocks})
    source_index = {s: i for i, s in enumerate(sources)}
    imp = _concat(blocks, schema.IMPRESSIONS_LOG, source_index, log_schema)
    ev = _concat(blocks, schema.EVENTS_LOG, source_index, log_schema)
    tombstones: dict[tuple[str, str], list[tuple[str, int]]] = collections.defaultdict(list)
    for b in blocks:
        for rid, cid, line in b.tombstones:
            tombstones[(rid, cid)].append((b.source, line))

    # Keys as strings "<len(request_id)>:<request_id><candidate_video_id>" (unambiguous), by column.
    imp_key, ev_key = _key_strings(imp, key), _key_strings(ev, key)
    simple = np.zeros(imp.num_rows, dtype=bool)  # impressions labelled by column
    if vectorised and imp.num_rows:
        codes = as_numpy(pc.dictionary_encode(imp_key).indices)
        simple = np.bincount(codes)[codes] == 1  # the only impression with its key …
        if tombstones:  # … and no copy of it was rejected while parsing
            rejected = pa.array([_key_string(*k) for k in tombstones], pa.string())
            simple &= ~as_bool(pc.is_in(imp_key, value_set=rejected))
    ev_index = _event_rows(imp_key, simple, ev_key)
    kinds = {k: as_bool(pc.equal(ev.column("event"), k)) for k in log_schema.event_types}
    values = as_numpy(ev.column("value")).astype(np.float64)  # null → nan
    if vectorised and ev.num_rows:
        # Keys with an exact duplicate event or a watch over the duration bound take join_key.
        identity = [*key, "event", "timestamp", "value"]
        copies = ev.select([*identity, LINE]).group_by(identity).aggregate([(LINE, "count")])
        duplicated = copies.filter(pc.greater(copies.column(f"{LINE}_count"), 1))
        over = np.zeros(ev.num_rows, dtype=bool)
        if log_schema.is_default:  # join.join_key: the watch ≤ 10 × video_duration bound
            over = (ev_index >= 0) & kinds[schema.WATCH_EVENT]
            duration = as_numpy(imp.column(schema.VIDEO_DURATION))
            over[over] = values[over] > schema.MAX_WATCH_DURATION_RATIO * duration[ev_index[over]]
        complicated = pa.concat_arrays([_key_strings(duplicated, key), ev_key.filter(pa.array(over))])
        if len(complicated):
            simple &= ~as_bool(pc.is_in(imp_key, value_set=complicated))
            ev_index = _event_rows(imp_key, simple, ev_key)

    # The reference join for every key not labelled by column.
    slow_imp: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    slow_rows = np.flatnonzero(~simple)
    for i, k in zip(slow_rows.tolist(), _keys(imp, slow_rows, key), strict=True):
        slow_imp[k].append(i)
    slow_ev: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    slow_rows = np.flatnonzero(ev_index < 0)
    for i, k in zip(slow_rows.tolist(), _keys(ev, slow_rows, key), strict=True):
        slow_ev[k].append(i)
    imp_records = _located(imp, [i for rows in slow_imp.values() for i in rows], sources,
                           schema.IMPRESSIONS_LOG, log_schema)
    ev_records = _located(ev, [i for rows in slow_ev.values() for i in rows], sources, schema.EVENTS_LOG,
                          log_schema)
    for k in sorted(set(slow_imp) | set(slow_ev) | set(tombstones)):
        located = [imp_records[i] for i in slow_imp.get(k, [])]
        located += [(s, line, None) for s, line in tombstones.get(k, [])]
        result = join.join_key(located, [ev_records[i] for i in slow_ev.get(k, [])], log_schema)
        out.rejected += result.rejected
        out.counts.update(result.counts)
        if result.features is not None:
            out.examples.append(join.to_example(result.features, log_schema).SerializeToString())
            out.request_ids.append(log_schema.partition_value(result.features))
    if not simple.any():
        return out

    # Column-wise labels for the simple keys (join.labels, by column).
    rows = np.flatnonzero(simple)
    position = np.full(imp.num_rows, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    has = ev_index >= 0
    order = np.lexsort((as_numpy(ev.column(LINE)), as_numpy(ev.column(SOURCE))))
    order = order[has[order]]  # merged events in (file, line) order, as join_key sorts them
    target = position[ev_index[order]]
    kind = {k: mask[order] for k, mask in kinds.items()}
    n = len(rows)

    def ordered(event: str) -> tuple[np.ndarray, np.ndarray]:
        """The merged events of one type in (file, line) order: their rows and their targets."""
        mask = kind.get(event, np.zeros(len(order), dtype=bool))
        return order[mask], target[mask]

    fields = set(log_schema.field_names)  # a label named like its field is that field (join.labels)
    labels: dict[str, np.ndarray] = {}
    for rule in log_schema.labels:
        if rule.name in fields:
            continue
        if rule.rule == "field":
            labels[rule.name] = _field_label(rule, imp.take(pa.array(rows)), log_schema)
            continue
        s, t = ordered(rule.event)
        if rule.rule == "any":
            labels[rule.name] = (np.bincount(t, minlength=n) > 0).astype(np.int64)
        elif rule.rule == "sum":
            total = np.zeros(n, dtype=np.float64)
            np.add.at(total, t, values[s])  # in (file, line) order, like sum()
            labels[rule.name] = total
        else:  # last: the latest by (timestamp, file, line): the last of each target in that order
            latest = np.zeros(n, dtype=np.float64)
            if len(s):
                by = np.lexsort((as_numpy(ev.column(LINE))[s], as_numpy(ev.column(SOURCE))[s],
                                 as_numpy(ev.column("timestamp"))[s], t))
                tb = t[by]
                last = np.r_[tb[1:] != tb[:-1], True]
                latest[tb[last]] = values[s][by][last]
            labels[rule.name] = latest
    out.counts[join.counter_name(schema.EVENTS_LOG, "merged")] += len(order)
    for event, mask in kind.items():
        if mask.any():
            out.counts[join.counter_name(schema.EVENTS_LOG, "merged", event)] += int(mask.sum())
    if log_schema.is_default:
        watch, clicked = labels[schema.WATCH_TIME], labels[schema.CLICK]
        without_click = int(((watch > 0) & (clicked == 0)).sum())
        if without_click:
            out.counts["examples.watch_without_click"] += without_click
    picked = imp.take(pa.array(rows))
    out.examples += encode_examples(picked, labels, log_schema)
    if log_schema.request_id:
        out.request_ids += picked.column(log_schema.request_id).to_pylist()
    else:  # LogSchema.partition_value: the length-prefixed key
        out.request_ids += _key_strings(picked, key).to_pylist()
    return out
