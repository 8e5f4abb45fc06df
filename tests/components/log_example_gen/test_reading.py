"""Reading log files: formats by extension, markers, blank lines, unreadable files."""

from __future__ import annotations

import gzip

from watchnext.components.log_example_gen import reading

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
