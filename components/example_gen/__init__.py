"""What every watchnext ExampleGen stands on: counts, rejections and the component shape.

LogExampleGen (logs, joined) and TableExampleGen (CSV rows) differ in what they read;
they share, from here:
- `records`: why a record was refused (`Invalid`), the rejected-record row, the Markdown
  table of reasons, the in = out + rejected check (light: no TFX, no Beam);
- `transforms`: bundle-summed counting (`CountingDoFn`), `CountRecords`, `WriteRejected`;
- `executor`: the run's plumbing (`RejectingExecutor`): counters to counts.json, rejected
  records to JSON Lines, the summary recorded on the RejectedRecords artifact, and the
  run failed when records in ≠ examples out + rejected or too many are rejected;
- `component`: the spec and constructor shape (`RejectingExampleGen`): a FileBasedExampleGen
  with a rejection limit and a `rejected` output (`artifacts.RejectedRecords`).
"""
