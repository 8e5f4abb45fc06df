"""Reading log files: formats by extension, markers, blank lines, unreadable files."""

from __future__ import annotations

import gzip
import tracemalloc

from watchnext.components.log_example_gen import reading
from watchnext.core import log_schema as schema

import pytest


def test_list_log_files_skips_markers_and_rejects_unknown_types(tmp_path):
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "b.json.gz").write_bytes(gzip.compress(b"{}\n"))
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".a.jsonl.crc").write_text("")
    names = [p.rsplit("/", 1)[1] for p in reading.list_log_files(str(tmp_path / "*"))]
    assert names == ["a.jsonl", "b.json.gz"]
    (tmp_path / "c.csv").write_text("x\n")
    with pytest.raises(reading.LogFileError, match=r"c\.csv: unknown log file type"):
        reading.list_log_files(str(tmp_path / "*"))
    with pytest.raises(FileNotFoundError, match="no log files match"):
        reading.list_log_files(str(tmp_path / "nothing" / "*"))


def test_read_log_file_numbers_lines_and_marks_blank_ones(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\r\n\n  \n\xff\xfe\n'))
    assert list(reading.read_log_file(str(path))) == [
        (1, b'{"a": 1}'), (2, None), (3, None), (4, b"\xff\xfe")]
    assert reading.decode(b"\xff\xfe")[1].startswith("not UTF-8")
    assert reading.decode(b'{"a": 1')[1].startswith("not JSON")
    assert reading.decode({"a": 1}) == ({"a": 1}, None)
    assert len(reading.raw_text(b"x" * 5000)) == reading.RAW_TEXT_LIMIT + 1


def test_unreadable_files_fail_naming_the_file(tmp_path):
    bad_gzip = tmp_path / "bad.jsonl.gz"
    bad_gzip.write_bytes(b"this is not gzip")
    with pytest.raises(reading.LogFileError, match=r"bad\.jsonl\.gz: cannot be read as jsonl\.gz"):
        list(reading.read_log_file(str(bad_gzip)))
    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_bytes(b"PAR1 nope")
    with pytest.raises(reading.LogFileError, match=r"bad\.parquet: cannot be read as parquet"):
        list(reading.read_log_file(str(bad_parquet)))


def _gzip_lines(n: int) -> bytes:
    return gzip.compress(b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * 50) for i in range(n)), mtime=0)


@pytest.mark.parametrize("cut", ["mid-stream", "in the trailer"])
def test_truncated_gzip_fails_naming_the_file_and_the_last_line_read(tmp_path, cut):
    whole = _gzip_lines(2000)
    path = tmp_path / "part-0.jsonl.gz"
    # Mid-stream loses lines; a cut in the 8-byte CRC/size trailer loses none, but the
    # copy is still incomplete (and unverifiable), so it fails the same way.
    path.write_bytes(whole[: len(whole) // 2] if cut == "mid-stream" else whole[:-4])
    read = []
    with pytest.raises(reading.LogFileError, match=r"part-0\.jsonl\.gz: truncated: .*copy it again") as e:
        for number, _ in reading.read_log_file(str(path)):
            read.append(number)
    assert f"(after line {len(read)})" in str(e.value)
    assert read == list(range(1, len(read) + 1))
    assert (len(read) < 2000) if cut == "mid-stream" else (len(read) == 2000)


@pytest.mark.parametrize("name", ["huge.jsonl", "huge.jsonl.gz"])
def test_a_huge_line_is_skipped_in_bounded_memory(tmp_path, name):
    huge = b'{"watch_history": ["' + b"v" * (20 << 20) + b'"]}'  # a 20 MB line
    data = b'{"a": 1}\n' + huge + b'\n{"a": 2}\n'
    path = tmp_path / name
    path.write_bytes(gzip.compress(data, compresslevel=1) if name.endswith(".gz") else data)
    tracemalloc.start()
    try:
        records = list(reading.read_log_file(str(path)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(n, p if isinstance(p, bytes) else type(p)) for n, p in records] == [
        (1, b'{"a": 1}'), (2, reading.OversizedLine), (3, b'{"a": 2}')]
    oversized = records[1][1]
    assert oversized.length >= len(huge) and oversized.head == huge[: reading.RAW_TEXT_LIMIT]
    assert peak < 4 * schema.MAX_LINE_BYTES < len(huge)  # the line was never held whole
    assert reading.raw_text(oversized).endswith("…") and len(reading.raw_text(oversized)) <= 1001


def test_line_length_bound_is_inclusive(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"1234567890\r\n12345678901\n\n123")
    records = list(reading.read_log_file(str(path), max_line_bytes=10))
    assert records[0] == (1, b"1234567890") and records[2:] == [(3, None), (4, b"123")]
    assert records[1] == (2, reading.OversizedLine(11, b"12345678901"))
