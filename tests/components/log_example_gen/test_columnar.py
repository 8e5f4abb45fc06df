"""The vectorised path (columnar.py) against the per-line reference path, on bad-input fixtures."""

from __future__ import annotations

import json
import math

from watchnext.components.log_example_gen import columnar, transforms
from watchnext.core import log_schema as schema

import numpy as np
import pytest
from tensorflow.core.example import example_pb2

# Lines that are valid JSON objects (so the Arrow reader takes their block) but fail a schema
# check: the vectorised mask must send each of them to the per-line path.
ARROW_READABLE_BAD_IMPRESSIONS = {
    "unknown_device": {"device": "fridge"},
    "out_of_range": {"position": 25},
    "missing_field": {"user_id": None},
    "non_finite": {"video_duration": math.nan},
    "empty_id": {"query_video_id": ""},
    "long_history": {"watch_history": [f"h{i}" for i in range(30)]},
    "zero_duration": {"video_duration": 0.0},
    "negative_age": {"video_age_days": -1.0},
}


def _bad_impression_lines(tiny) -> list[str]:
    return [tiny.line(tiny.impression("rb", f"c{i}", **{"position": 0, **changes}))
            for i, changes in enumerate(ARROW_READABLE_BAD_IMPRESSIONS.values())]


def _bad_event_lines(tiny) -> list[str]:
    return [tiny.line(e) for e in (
        tiny.event("r1", "a", "share"), tiny.event("r1", "a", "watch", -5.0),
        tiny.event("r1", "a", "watch", 100000.0), tiny.event("r1", "a", "survey"),
        tiny.event("r1", "a", "survey", 7.0), tiny.event("r1", "a", "like", math.nan),
        tiny.event("rb", "c0", "click"), tiny.event("", "a", "click"))]


def _canonical(serialized: bytes) -> str:
    """An example's bytes in a canonical form (feature map order is not part of the format)."""
    return example_pb2.Example.FromString(serialized).SerializeToString(deterministic=True).hex()


def _run(beam_join, tmp_path, name: str, impressions: list[str], events: list[str], vectorised: bool,
         shards: int = 3, spill_dir: str | None = None) -> dict[str, list]:
    """Both logs through JoinLogsToExampleBatches (conftest's beam_join): sorted examples, rejections
    and counts."""
    return beam_join(tmp_path / name, impressions, events, vectorised=vectorised, shards=shards,
                     example_line=lambda rid, x: _canonical(x), spill_dir=spill_dir)


def _write(path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_vectorised_path_equals_the_per_line_path_on_the_bad_input_fixtures(tiny, tmp_path, monkeypatch,
                                                                            beam_join):
    # Small blocks, so that files span several blocks and both readers meet block edges.
    monkeypatch.setattr(transforms, "BLOCK_RECORDS", 4)
    paths = tiny.write_logs(str(tmp_path / "logs"))
    extra_imp = _write(tmp_path / "imp-b.jsonl", _bad_impression_lines(tiny)
                       + [tiny.line(tiny.impression("r7", f"k{i}", i)) for i in range(6)])
    extra_ev = _write(tmp_path / "ev-b.jsonl", [
        *_bad_event_lines(tiny),
        tiny.line(tiny.event("r7", "k1", "click")), tiny.line(tiny.event("r7", "k1", "click")),  # duplicate
        tiny.line(tiny.event("r7", "k2", "watch", 601.0)),  # > 10 × the 60 s video
        tiny.line(tiny.event("r7", "k3", "survey", 2.0, ts=5)),  # the latest survey wins
        tiny.line(tiny.event("r7", "k3", "survey", 4.0, ts=3))])
    impressions, events = [paths["impressions"], extra_imp], [paths["events"], extra_ev]
    reference = _run(beam_join, tmp_path, "per_line", impressions, events, vectorised=False)
    vectorised = _run(beam_join, tmp_path, "vectorised", impressions, events, vectorised=True)
    spill = tmp_path / "spill"
    spilled = _run(beam_join, tmp_path, "spilled", impressions, events, vectorised=True, spill_dir=str(spill))

    assert vectorised["examples"] == reference["examples"]  # byte-compared (canonical), sorted
    assert vectorised["rejected"] == reference["rejected"]  # reason, field, detail, file, line, raw
    assert vectorised["counts"] == reference["counts"]
    # Blocks that wait on disk between reading and joining change nothing either.
    assert spilled == vectorised
    assert sorted(p.name for p in spill.iterdir()) == ["shard-00000", "shard-00001", "shard-00002"]
    [counts] = vectorised["counts"]
    # The fixtures' known answers plus the second file: in = out + rejected per log.
    assert counts["impressions.read"] == tiny.IMPRESSIONS_READ + len(ARROW_READABLE_BAD_IMPRESSIONS) + 6
    rejected = {log: sum(n for k, n in counts.items() if k.startswith(f"{log}.rejected.")) for log in
                ("impressions", "events")}
    assert counts["impressions.read"] == len(vectorised["examples"]) + rejected["impressions"]
    assert counts["events.read"] == counts["events.merged"] + rejected["events"]
    assert counts["events.rejected.duplicate_event"] == 2
    assert counts["events.rejected.watch_exceeds_duration"] == 2
    assert counts["impressions.rejected.out_of_range"] == 6  # position, empty id, history, duration, age …
    assert counts["events.rejected.event_of_rejected_impression"] == 3


def test_clean_mask_agrees_with_the_per_line_validation_line_by_line(tiny):
    cases = {
        schema.IMPRESSIONS_LOG: [x for x in tiny.IMPRESSION_LINES + _bad_impression_lines(tiny) if x],
        schema.EVENTS_LOG: tiny.EVENT_LINES + _bad_event_lines(tiny),
    }
    arrow_read = 0
    for log_name, lines in cases.items():
        for n, text in enumerate(lines, start=1):
            table = columnar.parse_block(log_name, [text.encode()], [n])
            record, rejected, _ = transforms.parse_line(log_name, "f", n, text.encode(), schema.MAX_POSITION)
            if table is None:  # refused by the Arrow reader (malformed, a wrong type, 5.0 for an int, …):
                continue       # its block takes the per-line path, which decides alone
            arrow_read += 1
            [ok] = columnar.clean_mask(log_name, table).tolist()
            assert ok == (record is not None), (text, rejected)
            if ok:
                if log_name == schema.EVENTS_LOG:
                    table = columnar.clean_events(table)
                [row] = table.drop([columnar.LINE]).to_pylist()
                assert row == record
    assert arrow_read > 30  # most fixture lines did go through the vectorised checks


@pytest.mark.parametrize("bad_line", [
    "{not json", '{"a": 1} {"b": 2}', '{"request_id": "r1", "request_id": "r2"}', "[1, 2]",
], ids=["malformed", "two_objects", "duplicate_key", "array"])
def test_a_block_the_arrow_reader_refuses_falls_back_to_the_per_line_path(tiny, tmp_path, bad_line,
                                                                         beam_join):
    lines = [tiny.line(tiny.impression("r1", c, i)) for i, c in enumerate("abc")]
    assert columnar.parse_block(schema.IMPRESSIONS_LOG, [x.encode() for x in lines], [1, 2, 3]) is not None
    block = [*lines[:2], bad_line, lines[2]]
    assert columnar.parse_block(schema.IMPRESSIONS_LOG, [x.encode() for x in block], [1, 2, 3, 4]) is None

    imp = _write(tmp_path / "imp.jsonl", block)
    ev = _write(tmp_path / "ev.jsonl", [tiny.line(tiny.event("r1", "a", "click"))])
    fallback = _run(beam_join, tmp_path, "fallback", [imp], [ev], vectorised=True, shards=2)
    reference = _run(beam_join, tmp_path, "reference", [imp], [ev], vectorised=False, shards=2)
    assert fallback == reference
    assert len(fallback["examples"]) == 3  # the block's good lines still became examples
    [rejected] = [json.loads(x) for x in fallback["rejected"]]
    assert (rejected["line"], rejected["source"]) == (3, imp)
    _, expected, _ = transforms.parse_line(schema.IMPRESSIONS_LOG, imp, 3, bad_line.encode(),
                                           schema.MAX_POSITION)
    assert rejected["reason"] == expected["reason"]


def test_shard_of_is_stable_and_in_range():
    ids = ["20260101-0001", "20260101-0002", "x", "20260101-0001"]
    shards = columnar.shard_of(columnar.pa.array(ids), 7)
    assert shards.tolist()[0] == shards.tolist()[3] and all(0 <= s < 7 for s in shards.tolist())
    import zlib

    assert shards.tolist() == [zlib.crc32(x.encode()) % 7 for x in ids]  # not Python's salted hash
    assert columnar.shard_of(columnar.pa.array([], columnar.pa.string()), 7).shape == (0,)
    assert np.array_equal(columnar.shard_of(columnar.pa.array(ids), 1), np.zeros(4))


def test_a_spilled_block_reads_back_as_the_same_block(tiny, tmp_path):
    lines = [tiny.line(tiny.impression("r1", f"c{i}", i)).encode() for i in range(3)]
    table = columnar.parse_block("impressions", lines, [1, 2, 3])
    block = columnar.Block("impressions", "/logs/part-0.jsonl.gz", table, [("r9", "c9", 7), ("r9", "c8", 8)])
    path = columnar.spill_block(block, str(tmp_path), shard=5)
    assert path.startswith(str(tmp_path / "shard-00005")) and path.endswith(".arrow")
    assert path != columnar.spill_block(block, str(tmp_path), shard=5)  # a retry never overwrites
    back = columnar.load_block(path)
    assert (back.log, back.source, back.tombstones) == (block.log, block.source, block.tombstones)
    assert back.table.equals(block.table) and back.table.schema.metadata == block.table.schema.metadata
    empty = columnar.Block("events", "e.jsonl", table.schema.empty_table())
    assert columnar.load_block(columnar.spill_block(empty, str(tmp_path), 0)).table.num_rows == 0
