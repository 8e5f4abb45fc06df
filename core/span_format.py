"""How a log folder names its spans (`data.span_format`): `span=YYYYMMDD` unless a config says otherwise.

Light (no TFX import), so the CLI can list spans before anything heavy loads, and the
LogExampleGen's input patterns and the span listing (components/log_example_gen/layout.py)
come from the same definition and cannot disagree about which folders are spans.

A format is a name or a TFX span spec (tfx/components/example_gen/utils.py):

- `YYYYMMDD` (default) = `{SPAN:8}`: daily spans, `span=20260101`.
- `YYYYMMDDHH` = `{SPAN:10}`: hourly spans, `span=2026010113`.
- `integer` = `{SPAN}`: a plain non-negative integer, `span=42` (no leading zeros: TFX
  re-creates a span's folder name from its number, so `span=042` would not be found again).
- `{SPAN:N}`: exactly N digits, zero-padded (TFX's width modifier), N from 1 to 10.

Spans are only ever compared as numbers (newest = largest, a window = the N largest up
to today's), never converted to dates, so the format only decides folder names.
"""

from __future__ import annotations

import re

DEFAULT_SPAN_FORMAT = "YYYYMMDD"
# Named formats and the TFX span spec each stands for.
NAMED_SPAN_FORMATS = {"YYYYMMDD": "{SPAN:8}", "YYYYMMDDHH": "{SPAN:10}", "integer": "{SPAN}"}
# Formats whose spans are dates: a span number always has all the digits (no zero-padding), so
# a daily 20260101 passed as an hourly span is refused instead of naming `span=0020260101`.
DATE_SPAN_FORMATS = ("YYYYMMDD", "YYYYMMDDHH")
# The folder of one span is SPAN_PREFIX + the spec, e.g. `span={SPAN:8}`.
SPAN_PREFIX = "span="
# TFX's RangeConfig holds span numbers as int32: wider spans could not be re-ingested by number.
MAX_SPAN = 2**31 - 1
MAX_WIDTH = 10
_SPEC = re.compile(r"\{SPAN(?::(?P<width>[1-9][0-9]*))?\}")


def span_spec(span_format: str) -> str:
    """The TFX span spec of a format (`{SPAN:8}` for `YYYYMMDD`); ValueError says what is accepted."""
    spec = NAMED_SPAN_FORMATS.get(span_format, span_format)
    match = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if match is None or (match["width"] and int(match["width"]) > MAX_WIDTH):
        raise ValueError(f"{span_format!r} is not a span format: use one of {sorted(NAMED_SPAN_FORMATS)} "
                         f"or a TFX span spec {{SPAN}} or {{SPAN:N}} with N from 1 to {MAX_WIDTH}")
    return spec


def span_width(span_format: str) -> int | None:
    """Digits of every span folder name (None: any number of digits)."""
    width = _SPEC.fullmatch(span_spec(span_format))["width"]
    return int(width) if width else None


def span_dir(span_format: str = DEFAULT_SPAN_FORMAT) -> str:
    """The span folder as a TFX pattern component, e.g. `span={SPAN:8}`."""
    return SPAN_PREFIX + span_spec(span_format)


def log_pattern(log_name: str, span_format: str = DEFAULT_SPAN_FORMAT) -> str:
    """A log's TFX input pattern under the logs folder, e.g. `impressions/span={SPAN:8}/*`."""
    return f"{log_name}/{span_dir(span_format)}/*"


def span_folder(span: int, span_format: str = DEFAULT_SPAN_FORMAT) -> str:
    """The folder name of `span` (zero-padded to the width); ValueError if it cannot be one."""
    width = span_width(span_format)
    digits = len(str(span))
    if (span < 0 or span > MAX_SPAN or (width is not None and digits > width)
            or (span_format in DATE_SPAN_FORMATS and digits != width)):
        raise ValueError(f"span {span} cannot be a {describe(span_format)} folder "
                         f"(data.span_format {span_format!r})")
    return SPAN_PREFIX + (str(span).zfill(width) if width else str(span))


def parse_span_folder(name: str, span_format: str = DEFAULT_SPAN_FORMAT) -> int | None:
    """The span a folder name holds in this format (None: not a span folder of this format)."""
    digits = name[len(SPAN_PREFIX):] if name.startswith(SPAN_PREFIX) else ""
    if not (digits.isascii() and digits.isdigit()):
        return None
    width = span_width(span_format)
    if width is not None and len(digits) != width:
        return None
    if span_format in DATE_SPAN_FORMATS and digits.startswith("0"):
        return None
    if width is None and digits != str(int(digits)):  # leading zeros: not found again by number
        return None
    return int(digits) if int(digits) <= MAX_SPAN else None


def describe(span_format: str = DEFAULT_SPAN_FORMAT) -> str:
    """The folder layout in words for messages, e.g. `span=YYYYMMDD` or `span=<integer>`."""
    if span_format in DATE_SPAN_FORMATS:
        return SPAN_PREFIX + span_format
    width = span_width(span_format)
    return SPAN_PREFIX + (f"<{width} digits>" if width else "<integer>")


def example_folder(span_format: str = DEFAULT_SPAN_FORMAT) -> str:
    """An example span folder name for messages, e.g. `span=20260101`."""
    examples = {"YYYYMMDD": 20260101, "YYYYMMDDHH": 2026010100}
    return span_folder(examples.get(span_format, 1), span_format)
