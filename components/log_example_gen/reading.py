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
from collections.abc import Iterator
from typing import Any

from watchnext.components.log_example_gen import schema

from tfx.dsl.io import fileio

# What a rejected record keeps of its raw text.
RAW_TEXT_LIMIT = 1000


class LogFileError(ValueError):
    """A log file cannot be read at all (unknown format, corrupt gzip or Parquet)."""


def is_marker_file(path: str) -> bool:
    """Hidden files and `_`-prefixed markers (_SUCCESS, _committed_…) are not data."""
    return os.path.basename(path).startswith((".", "_"))


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


def read_log_file(path: str) -> Iterator[tuple[int, Any]]:
    """Yield (line or row number from 1, payload) for every record of one file.

    JSON Lines payloads are the raw line (bytes, undecoded, so that a bad byte is a
    rejected record rather than a crash); blank lines yield payload None. Parquet
    payloads are row dicts.
    """
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # pyarrow cannot read through tf.io.gfile's GFile (no `.closed`): open local
            # files by path, and read remote ones (gs://, …) into memory.
            source: Any = path
            if "://" in path:
                with fileio.open(path, "rb") as f:
                    source = io.BytesIO(f.read())
            row = 0
            for batch in pq.ParquetFile(source).iter_batches(batch_size=10000):
                for record in batch.to_pylist():
                    row += 1
                    yield row, record
            return
        with fileio.open(path, "rb") as raw:
            f = gzip.GzipFile(fileobj=raw, mode="rb") if fmt == "jsonl.gz" else raw
            for number, line in enumerate(f, start=1):
                line = line.rstrip(b"\r\n")
                yield number, (line if line.strip() else None)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise LogFileError(f"{path}: cannot be read as {fmt}: {e}") from e
    except Exception as e:  # pyarrow raises its own error types for corrupt files
        if type(e).__module__.startswith("pyarrow"):
            raise LogFileError(f"{path}: cannot be read as {fmt}: {e}") from e
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
    if isinstance(payload, bytes):
        text = payload.decode("utf-8", errors="replace")
    else:
        text = json.dumps(payload, default=str, sort_keys=True)
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "…"
