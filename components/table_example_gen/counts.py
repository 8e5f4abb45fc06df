"""TableExampleGen's summary (counts.json) and the rule that fails a run.

The summary says what a person wants to know after a run: rows read, examples per
split, rows rejected per reason, positives per derived label, and whether every row is
accounted for:  rows.read = examples.total + rows.rejected.
"""

from __future__ import annotations

from typing import Any

from watchnext.components.table_example_gen.parsing import ROWS
from watchnext.core.records import accounting_error, by_prefix

# `source` of the summary, so readers of counts.json can tell it from LogExampleGen's.
SOURCE = "table"


def summarize(flat: dict[str, int], split_names: list[str], files: list[str], labels: list[str],
              max_rejected_fraction: float) -> dict[str, Any]:
    """The structured summary of one run from its flat {count key: n}."""
    examples = {name: int(flat.get(f"examples.{name}", 0)) for name in split_names}
    total = sum(examples.values())
    rejected = by_prefix(flat, f"{ROWS}.rejected.")
    rows = {"read": int(flat.get(f"{ROWS}.read", 0)), "rejected": sum(rejected.values()),
            "rejected_by_reason": rejected, "blank_lines": int(flat.get(f"{ROWS}.blank_lines", 0)),
            "header_lines": int(flat.get(f"{ROWS}.header_lines", 0))}
    summary: dict[str, Any] = {
        "source": SOURCE,
        "files": files,
        ROWS: rows,
        "examples": {**examples, "total": total},
        "label_positives": {label: int(flat.get(f"labels.{label}.positive", 0)) for label in labels},
        "max_rejected_fraction": max_rejected_fraction,
        "rejected_fraction": rows["rejected"] / rows["read"] if rows["read"] else 0.0,
        "accounting_errors": [],
    }
    error = accounting_error(ROWS, rows["read"], {"examples": total, "rejected": rows["rejected"]})
    if error:
        summary["accounting_errors"].append(error)
    summary["counters"] = dict(sorted(flat.items()))
    return summary


def describe(summary: dict[str, Any]) -> str:
    """One paragraph for the log and for error messages."""
    rows = summary[ROWS]
    splits = ", ".join(f"{k} {v}" for k, v in summary["examples"].items())
    positives = ", ".join(f"{k} {v}" for k, v in summary["label_positives"].items()) or "none derived"
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(rows["rejected_by_reason"].items(),
                                                     key=lambda kv: (-kv[1], kv[0]))[:5]) or "none"
    return (f"read {rows['read']} rows from {len(summary['files'])} file(s); wrote examples ({splits}); "
            f"label positives ({positives}); rejected {rows['rejected']} rows "
            f"({summary['rejected_fraction']:.2%}); top reasons: {reasons}")


def failure(summary: dict[str, Any], rejected_uri: str) -> str | None:
    """Why the run must fail (bad accounting, no rows, too many rejections), or None."""
    where = f"Rejected rows (file, line, reason) and counts.json are in {rejected_uri}."
    if summary["accounting_errors"]:
        return (f"TableExampleGen: rows are unaccounted for ({'; '.join(summary['accounting_errors'])}); "
                f"this is a bug in the ExampleGen. {describe(summary)}. {where}")
    if summary[ROWS]["read"] == 0:
        return f"TableExampleGen: no data rows in {summary['files']}. {where}"
    limit = summary["max_rejected_fraction"]
    if summary["rejected_fraction"] > limit:
        return (f"TableExampleGen: the rejected fraction exceeds max_rejected_fraction={limit}: "
                f"{describe(summary)}. Fix the table (or the config's column types) or raise "
                f"data.max_rejected_fraction. {where}")
    return None
