"""Reading log files record by record, keeping where each record came from.

Why not Beam's ReadFromText/ReadFromParquet: a rejected record must name its file and
line, which those sources do not report. Log shards are many and moderate in size, so
reading one file per DoFn call parallelizes well enough.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from watchnext.core import log_schema as schema
from watchnext.core import records
from watchnext.core.errors import BadInputData
from watchnext.core.records import RAW_TEXT_LIMIT, is_marker_file

from tfx.dsl.io import fileio

# Read size of plain files, and how much of an over-long line is read at a time while
# skipping to its end.
_CHUNK_BYTES = 1 << 16


class LogFileError(BadInputData, ValueError):
    """A log file cannot be read at all (unknown format, corrupt or truncated gzip or Parquet)."""


@dataclass(frozen=True)
class OversizedLine:
    """A JSON line longer than the bound: its length and first bytes, never the whole line."""

    length: int
    head: bytes


class _RawReader(io.RawIOBase):
    """A file object that only has `read(n)` (tf.io.gfile's GFile) as a raw stream, so that
    io.BufferedReader can give it a bounded `readline(limit)` (GFile's readline has no limit)."""

    def __init__(self, f: Any) -> None:
        super().__init__()
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._f.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def file_format(path: str) -> str:
    """'jsonl', 'jsonl.gz' or 'parquet', from the file name; LogFileError for anything else."""
    name = os.path.basename(path).lower()
    if name.endswith(schema.PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(tuple(s for s in schema.JSONL_SUFFIXES if s.endswith(".gz"))):
        return "jsonl.gz"
    if name.endswith(schema.JSONL_SUFFIXES):
        return "jsonl"
    raise LogFileError(f"{path}: unknown log file type; expected a name ending in one of "
                       f"{', '.join(schema.JSONL_SUFFIXES + schema.PARQUET_SUFFIXES)}")


def list_log_files(pattern: str) -> list[str]:
    """The data files matching a glob pattern, sorted; marker files skipped.

    Raises FileNotFoundError when nothing matches (a missing log would otherwise turn
    into silently all-negative labels) and LogFileError for a file of unknown type.
    """
    files = sorted(p for p in fileio.glob(pattern) if not fileio.isdir(p) and not is_marker_file(p))
    if not files:
        raise FileNotFoundError(f"no log files match {pattern}")
    for path in files:
        file_format(path)
    return files


def _bounded_lines(f: IO[bytes], max_line_bytes: int) -> Iterator[bytes | OversizedLine]:
    """Every line of a buffered binary stream without its line ending, holding at most
    about max_line_bytes of any line: a longer line becomes an OversizedLine."""
    limit = max_line_bytes + 2  # room for a line of exactly max_line_bytes and its "\r\n"
    while True:
        line = f.readline(limit)
        if not line:
            return
        if len(line) == limit and not line.endswith(b"\n"):
            head, length = line[:RAW_TEXT_LIMIT], len(line)
            while not line.endswith(b"\n"):
                line = f.readline(_CHUNK_BYTES)
                if not line:
                    break
                length += len(line)
            yield OversizedLine(length, head)
            continue
        line = line.rstrip(b"\r\n")
        yield OversizedLine(len(line), line[:RAW_TEXT_LIMIT]) if len(line) > max_line_bytes else line


def read_log_file(path: str, max_line_bytes: int = schema.MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """Yield (line or row number from 1, payload) for every record of one file.

    JSON Lines payloads are the raw line (bytes, undecoded, so that a bad byte is a
    rejected record rather than a crash); blank lines yield payload None; a line longer
    than max_line_bytes yields an OversizedLine (read in bounded memory). Parquet
    payloads are row dicts.

    A file that ends early (a gzip stream cut before its end marker, as a partial copy
    leaves it) raises LogFileError naming the file and the last line read: the lines
    before the cut have been yielded, but the failure fails the whole run, so a
    truncated file never yields a silently shortened span.
    """
    fmt = file_format(path)
    number = 0
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # pyarrow cannot read through tf.io.gfile's GFile (no `.closed`): open local
            # files by path, and read remote ones (gs://, …) into memory.
            source: Any = path
            if "://" in path:
                with fileio.open(path, "rb") as f:
                    source = io.BytesIO(f.read())
            for batch in pq.ParquetFile(source).iter_batches(batch_size=10000):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
            return
        with fileio.open(path, "rb") as raw:
            f = (gzip.GzipFile(fileobj=raw, mode="rb") if fmt == "jsonl.gz"
                 else io.BufferedReader(_RawReader(raw), buffer_size=_CHUNK_BYTES))
            for number, line in enumerate(_bounded_lines(f, max_line_bytes), start=1):
                yield number, (line if isinstance(line, OversizedLine) or line.strip() else None)
    except EOFError as e:
        raise LogFileError(f"{path}: truncated: {e} (after line {number}); the file is a partial "
                           "copy: copy it again") from e
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError; zlib.error: corrupt data
        raise LogFileError(f"{path}: cannot be read as {fmt} (after line {number}): {e}") from e
    except Exception as e:  # pyarrow raises its own error types for corrupt files
        if type(e).__module__.startswith("pyarrow"):
            raise LogFileError(f"{path}: cannot be read as {fmt} (after row {number}): {e}") from e
        raise


def decode(payload: Any) -> tuple[Any, str | None]:
    """A payload as a Python value, or (None, why) when a JSON line does not parse."""
    if not isinstance(payload, bytes):
        return payload, None
    try:
        return json.loads(payload.decode("utf-8")), None
    except UnicodeDecodeError as e:
        return None, f"not UTF-8: {e}"
    except json.JSONDecodeError as e:
        return None, f"not JSON: {e.msg} at column {e.colno}"


def raw_text(payload: Any) -> str:
    """The record as text for the rejected-records output, at most RAW_TEXT_LIMIT characters."""
    if isinstance(payload, OversizedLine):
        return payload.head.decode("utf-8", errors="replace")[:RAW_TEXT_LIMIT] + "…"
    return records.raw_text(payload)
