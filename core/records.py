"""Records in, examples out, records rejected: the light half of the ExampleGen base.

Why a record was refused (`Invalid`), the row written for it, the reasons' Markdown table,
which files are data, and the counts' in = out + rejected check. No TFX, no Beam: the
schemas and parsers that produce `Invalid` are imported by the simulator and the README tests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

# Raw text kept per rejected record, in characters (the rest is cut and marked "…").
RAW_TEXT_LIMIT = 1000


@dataclass(frozen=True)
class Invalid:
    """Why a record was rejected: a reason code (counted) and the field and detail (for people)."""

    reason: str
    field: str = ""
    detail: str = ""


def rejection(source_name: str, source: str, line: int, invalid: Invalid, raw: str) -> dict[str, Any]:
    """A rejected-records output row: what was read (`log`: impressions, events, rows), where
    (file and line), why, and its raw text. Its counter name is derived from log and reason."""
    return {"log": source_name, "source": source, "line": line, "reason": invalid.reason,
            "field": invalid.field, "detail": invalid.detail, "raw": raw}


def raw_text(payload: Any) -> str:
    """A record as text for the rejected-records output (bytes decoded, anything else as JSON),
    at most RAW_TEXT_LIMIT characters."""
    if isinstance(payload, bytes):
        text = payload.decode("utf-8", errors="replace")
    else:
        text = json.dumps(payload, default=str, sort_keys=True)
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "…"


def markdown_cell(text: str) -> str:
    """`text` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def markdown_reasons(reasons: dict[str, str]) -> str:
    """{reason code: meaning} as a Markdown table for the README."""
    rows = ["| Reason | Meaning |", "|---|---|"]
    rows += [f"| `{reason}` | {markdown_cell(meaning)} |" for reason, meaning in reasons.items()]
    return "\n".join(rows)


def is_marker_file(path: str) -> bool:
    """Hidden files and `_`-prefixed markers (_SUCCESS, _committed_…) are not data."""
    return os.path.basename(path).startswith((".", "_"))


def by_prefix(flat: dict[str, int], prefix: str) -> dict[str, int]:
    """{rest of key: n} for the flat counters whose key starts with `prefix`."""
    return {k[len(prefix):]: v for k, v in sorted(flat.items()) if k.startswith(prefix)}


def accounting_error(what: str, read: int, parts: dict[str, int]) -> str | None:
    """The in = out + rejected check: None when `read` equals the sum of `parts`
    ({"examples": n, "rejected": m}), else e.g. "rows: 10 read != 8 examples + 1 rejected"."""
    if read == sum(parts.values()):
        return None
    return f"{what}: {read} read != " + " + ".join(f"{n} {name}" for name, n in parts.items())
