"""The RejectedRecords artifact type: what an ExampleGen run refused, and why."""

from __future__ import annotations

from tfx.types import artifact


class RejectedRecords(artifact.Artifact):
    """Rejected log records of one span and the run's counts.

    Files: `rejected-SSSSS-of-NNNNN.jsonl.gz` (one JSON object per rejected record: log,
    source file, line, reason, field, detail, raw text truncated to 1000 characters) and
    `counts.json` (see counts.summarize). Custom properties repeat the main counts
    (span, impressions_read, events_read, examples_<split>, …) so that they show in MLMD.
    """

    # namespace.Name: the Kubeflow V2 compiler refuses custom type names of any other shape.
    TYPE_NAME = "watchnext.RejectedRecords"
