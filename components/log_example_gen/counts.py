"""Turning the pipeline's flat counts into the ExampleGen's summary, and judging it.

The summary (written as counts.json into the RejectedRecords artifact) is what a
person reads after a run: records read per log, examples per split, events merged,
rejections per reason, the rejected fractions, and whether every record is accounted
for:  impressions.read = examples.total + impressions.rejected  and
      events.read = events.merged + events.rejected.
"""

from __future__ import annotations

from typing import Any

from watchnext.core import log_schema as schema
from watchnext.core.records import accounting_error, by_prefix

LOGS = (schema.IMPRESSIONS_LOG, schema.EVENTS_LOG)


def summarize(flat: dict[str, int], split_names: list[str], span: int, version: int | None,
              files: dict[str, list[str]], max_rejected_fraction: float, uses_events: bool = True
              ) -> dict[str, Any]:
    """The structured summary of one run from its flat {count key: n}. `uses_events`: whether
    a label of the log schema reads events (otherwise the events log is not read at all)."""
    examples = {name: int(flat.get(f"examples.{name}", 0)) for name in split_names}
    summary: dict[str, Any] = {
        "span": span,
        "version": version,
        "files": files,
        "examples": {**examples, "total": sum(examples.values()),
                     "watch_without_click": int(flat.get("examples.watch_without_click", 0))},
        "max_rejected_fraction": max_rejected_fraction,
        "uses_events": uses_events,
        "rejected_fraction": {},
    }
    for log in LOGS:
        rejected = by_prefix(flat, f"{log}.rejected.")
        entry = {"read": int(flat.get(f"{log}.read", 0)), "rejected": sum(rejected.values()),
                 "rejected_by_reason": rejected, "blank_lines": int(flat.get(f"{log}.blank_lines", 0))}
        if log == schema.EVENTS_LOG:
            entry["merged"] = int(flat.get(f"{log}.merged", 0))
            entry["merged_by_event"] = by_prefix(flat, f"{log}.merged.")
        summary[log] = entry
        summary["rejected_fraction"][log] = entry["rejected"] / entry["read"] if entry["read"] else 0.0
    summary["accounting_errors"] = accounting_errors(summary)
    summary["counters"] = dict(sorted(flat.items()))
    return summary


def accounting_errors(summary: dict[str, Any]) -> list[str]:
    """Every way in which records in ≠ examples out + rejected (empty when all is well)."""
    imp, ev = summary[schema.IMPRESSIONS_LOG], summary[schema.EVENTS_LOG]
    checks = [accounting_error("impressions", imp["read"],
                               {"examples": summary["examples"]["total"], "rejected": imp["rejected"]}),
              accounting_error("events", ev["read"], {"merged": ev["merged"], "rejected": ev["rejected"]})]
    return [error for error in checks if error]


def top_reasons(summary: dict[str, Any], n: int = 5) -> list[tuple[str, int]]:
    """The n most frequent `<log>.<reason>` with their counts."""
    pairs = [(f"{log}.{reason}", count) for log in LOGS
             for reason, count in summary[log]["rejected_by_reason"].items()]
    return sorted(pairs, key=lambda p: (-p[1], p[0]))[:n]


def describe(summary: dict[str, Any]) -> str:
    """One paragraph for the log and for error messages."""
    imp, ev = summary[schema.IMPRESSIONS_LOG], summary[schema.EVENTS_LOG]
    splits = ", ".join(f"{k} {v}" for k, v in summary["examples"].items() if k != "watch_without_click")
    reasons = ", ".join(f"{k}={v}" for k, v in top_reasons(summary)) or "none"
    return (f"span {summary['span']}: read {imp['read']} impressions and {ev['read']} events; "
            f"wrote examples ({splits}); merged {ev['merged']} events; rejected {imp['rejected']} "
            f"impressions ({summary['rejected_fraction'][schema.IMPRESSIONS_LOG]:.2%}) and "
            f"{ev['rejected']} events ({summary['rejected_fraction'][schema.EVENTS_LOG]:.2%}); "
            f"top reasons: {reasons}")


def failure(summary: dict[str, Any], rejected_uri: str) -> str | None:
    """Why the run must fail (too many rejections, no impressions or no events read, bad
    accounting), or None."""
    limit = summary["max_rejected_fraction"]
    where = f"Rejected records (file, line, reason) and counts.json are in {rejected_uri}."
    if summary["accounting_errors"]:
        return (f"LogExampleGen: records are unaccounted for ({'; '.join(summary['accounting_errors'])}); "
                f"this is a bug in the ExampleGen. {describe(summary)}. {where}")
    if summary[schema.IMPRESSIONS_LOG]["read"] == 0:
        return (f"LogExampleGen: span {summary['span']} has no impression records in "
                f"{summary['files'][schema.IMPRESSIONS_LOG]}. {where}")
    # Like a span without event files (refused by the driver): every label would be 0.
    if summary[schema.EVENTS_LOG]["read"] == 0 and summary.get("uses_events", True):
        return (f"LogExampleGen: span {summary['span']} has impressions but no event records in "
                f"{summary['files'][schema.EVENTS_LOG]} (every label would be 0). {where}")
    over = [log for log in LOGS if summary["rejected_fraction"][log] > limit]
    if over:
        return (f"LogExampleGen: span {summary['span']}: the rejected fraction of "
                f"{' and '.join(over)} exceeds max_rejected_fraction={limit}: {describe(summary)}. "
                f"Fix the logs or raise data.max_rejected_fraction. {where}")
    return None
