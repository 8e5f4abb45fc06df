"""TableExampleGen's executor: CSV or Parquet rows → typed, labelled tf.Examples in seeded splits.

Like LogExampleGen's, it stands on the ExampleGen base (example_gen/executor.py: TFX's
BaseExampleGenExecutor with the rejected records, counts.json and the rejection limit) and
overrides `GenerateExamplesByBeam`: the split is a hash of (split_seed, file, line) rather
than of a feature, and rows that fail to parse go to the `rejected` output.
The split names and percentages come from output_config (its hash_buckets).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from watchnext.components.example_gen import executor as base
from watchnext.components.example_gen.transforms import COUNTS, REJECTED
from watchnext.components.table_example_gen import counts as counts_lib
from watchnext.components.table_example_gen import parsing, transforms
from watchnext.core.records import is_marker_file

import apache_beam as beam
from tfx import types
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs

TABLE_SPEC_KEY = "table_spec"
# The private exec-property key under which Do hands the file list to GenerateExamplesByBeam.
_FILES = "_table_files"

log = logging.getLogger(__name__)


def table_pattern(exec_properties: dict[str, Any]) -> str:
    """input_base joined with the one input split's pattern (the table's files)."""
    input_config = base.input_config(exec_properties)
    if len(input_config.splits) != 1:
        raise ValueError(f"TableExampleGen reads one file pattern; input_config has "
                         f"{len(input_config.splits)} splits")
    return os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                        input_config.splits[0].pattern)


def list_table_files(pattern: str) -> list[str]:
    """The data files matching `pattern`, sorted, marker files (_SUCCESS, .hidden) skipped."""
    files = sorted(p for p in fileio.glob(pattern) if not fileio.isdir(p) and not is_marker_file(p))
    if not files:
        raise FileNotFoundError(f"TableExampleGen: no files match {pattern} (config key data.table.path, "
                                "or `watchnext run --logs PATH`)")
    return files


def split_buckets(output_config: example_gen_pb2.Output) -> tuple[list[str], list[int]]:
    """Split names and their cumulative hash-bucket bounds, e.g. ([train, eval, test], [50, 75, 100])."""
    names, bounds = [], []
    for split in output_config.split_config.splits:
        names.append(split.name)
        bounds.append((bounds[-1] if bounds else 0) + split.hash_buckets)
    if not names:
        raise ValueError("TableExampleGen needs output_config.split_config with the splits' percentages "
                         "as hash_buckets")
    return names, bounds


class Executor(base.RejectingExecutor):
    """Reads the table's files; writes examples per split, rejected rows and counts."""

    NAME = "TableExampleGen"

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]
                               ) -> dict[str, beam.pvalue.PCollection]:
        """Parse, label and split every row; count each split as it is written."""
        split_names, buckets = split_buckets(base.output_config(exec_properties))
        spec = parsing.TableSpec.from_json(exec_properties[TABLE_SPEC_KEY])
        files = exec_properties.get(_FILES) or list_table_files(table_pattern(exec_properties))

        read = pipeline | "ReadTable" >> transforms.ReadTable(files, spec, split_names, buckets)
        counts = [read[COUNTS]]
        for name in split_names:
            counts.append(read[name]
                          | f"CountExamples[{name}]" >> beam.combiners.Count.Globally()
                          | f"CountKey[{name}]" >> beam.Map(lambda n, key=f"examples.{name}": (key, n)))
        base.write_counts_and_rejects(counts, read[REJECTED], exec_properties[base.REJECTED_URI])
        return {name: read[name] for name in split_names}

    def prepare(self, output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
                ) -> dict[str, Any]:
        """List the table's files before Beam starts, so a missing table fails with a plain message."""
        files = list_table_files(table_pattern(exec_properties))
        log.info("TableExampleGen: %d file(s): %s", len(files), files)
        return {_FILES: files}

    def summarize(self, flat: dict[str, int], split_names: list[str], exec_properties: dict[str, Any]
                  ) -> dict[str, Any]:
        spec = parsing.TableSpec.from_json(exec_properties[TABLE_SPEC_KEY])
        return counts_lib.summarize(flat, split_names, exec_properties[_FILES], list(spec.labels),
                                    base.max_rejected_fraction(exec_properties))

    def properties(self, summary: dict[str, Any], split_names: list[str]) -> dict[str, Any]:
        rows = summary[parsing.ROWS]
        return {"rows_read": int(rows["read"]), "rows_rejected": int(rows["rejected"]),
                "examples_written": int(summary["examples"]["total"]),
                **{f"examples_{name}": int(summary["examples"][name]) for name in split_names},
                "rejected_fraction": float(summary["rejected_fraction"]),
                "rejected_by_reason": rows["rejected_by_reason"],
                "source": counts_lib.SOURCE}

    def describe(self, summary: dict[str, Any]) -> str:
        return counts_lib.describe(summary)

    def failure(self, summary: dict[str, Any], rejected_uri: str) -> str | None:
        return counts_lib.failure(summary, rejected_uri)
