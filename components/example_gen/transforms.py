"""The Beam pieces every watchnext ExampleGen counts and rejects with.

    CountingDoFn    a DoFn that tallies (count key, n) per bundle into the `counts` output
    CountRecords()  (count key, n) pairs → one {count key: n} dict; each key also a Beam counter
    WriteRejected(prefix) → rejected-SSSSS-of-NNNNN.jsonl.gz

Counting is summed per bundle so that it costs a few elements per bundle rather than one
per record. Count keys double as the Beam counter names (namespace COUNTER_NAMESPACE).
"""

from __future__ import annotations

import collections
import json

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

# Tagged outputs: refused records (dicts, see records.rejection) and (count key, n) pairs.
REJECTED = "rejected"
COUNTS = "counts"
# The Beam counter namespace of every ExampleGen's count keys (LogExampleGen's first; kept).
COUNTER_NAMESPACE = "LogExampleGen"


class CountingDoFn(beam.DoFn):
    """A DoFn that tallies count keys and emits the bundle's totals to the `counts` output."""

    def start_bundle(self):
        self._counts: collections.Counter[str] = collections.Counter()

    def count(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    def finish_bundle(self):
        for key, n in self._counts.items():
            yield beam.pvalue.TaggedOutput(COUNTS, WindowedValue(
                (key, n), window.GlobalWindow().max_timestamp(), [window.GlobalWindow()]))
        self._counts.clear()


class _IncrementCounter(beam.DoFn):
    """Adds each key's total to the Beam counter of the same name, and passes it on."""

    def process(self, element: tuple[str, int]):
        key, n = element
        Metrics.counter(COUNTER_NAMESPACE, key).inc(n)
        yield element


@beam.ptransform_fn
def CountRecords(counts):
    """(count key, n) pairs → a single {key: total} dict ({} if none); zero totals are dropped."""
    return (counts
            | "SumPerKey" >> beam.CombinePerKey(sum)
            | "DropZeros" >> beam.Filter(lambda kv: kv[1] != 0)
            | "IncrementCounters" >> beam.ParDo(_IncrementCounter())
            | "ToDict" >> beam.combiners.ToDict())


@beam.ptransform_fn
def WriteRejected(rejected, file_path_prefix: str):
    """Rejected-record dicts → gzip'd JSON Lines shards `<prefix>-SSSSS-of-NNNNN.jsonl.gz`."""
    return (rejected
            | "ToJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True, ensure_ascii=False))
            | "Write" >> beam.io.WriteToText(file_path_prefix, file_name_suffix=".jsonl.gz",
                                             compression_type=beam.io.filesystem.CompressionTypes.GZIP))
