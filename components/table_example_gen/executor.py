"""TableExampleGen's executor: CSV rows → typed, labelled tf.Examples in seeded splits.

Like LogExampleGen's, it extends TFX's BaseExampleGenExecutor (whose `Do` writes the
splits and sets the payload and file formats) and overrides `GenerateExamplesByBeam`:
the split is a hash of (split_seed, file, line) rather than of a feature, and rows
that fail to parse go to the `rejected` output, which the standard hook has no place for.
The split names and percentages come from output_config (its hash_buckets).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from watchnext.components.log_example_gen import reading
from watchnext.components.log_example_gen import transforms as log_transforms
from watchnext.components.log_example_gen.executor import (
    COUNTS_FILE,
    FLAT_COUNTS_FILE,
    REJECTED_FILE_PREFIX,
    REJECTED_KEY,
    max_rejected_fraction,
    take_flat_counts,
    write_json,
)
from watchnext.components.table_example_gen import counts as counts_lib
from watchnext.components.table_example_gen import parsing, transforms
from watchnext.core.errors import TooManyRejected

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

TABLE_SPEC_KEY = "table_spec"
# Private exec-property keys that Do hands to GenerateExamplesByBeam.
_REJECTED_URI = "_rejected_uri"
_FILES = "_table_files"

log = logging.getLogger(__name__)


def table_pattern(exec_properties: dict[str, Any]) -> str:
    """input_base joined with the one input split's pattern (the table's files)."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    if len(input_config.splits) != 1:
        raise ValueError(f"TableExampleGen reads one file pattern; input_config has "
                         f"{len(input_config.splits)} splits")
    return os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                        input_config.splits[0].pattern)


def list_table_files(pattern: str) -> list[str]:
    """The data files matching `pattern`, sorted, marker files (_SUCCESS, .hidden) skipped."""
    files = sorted(p for p in fileio.glob(pattern) if not fileio.isdir(p) and not reading.is_marker_file(p))
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


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Reads the table's files; writes examples per split, rejected rows and counts."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Not used: seeded row splits and a rejected output do not fit this hook."""
        raise NotImplementedError("TableExampleGen's executor builds its pipeline in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]
                               ) -> dict[str, beam.pvalue.PCollection]:
        """Parse, label and split every row; count each split as it is written."""
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        split_names, buckets = split_buckets(output_config)
        spec = parsing.TableSpec.from_json(exec_properties[TABLE_SPEC_KEY])
        files = exec_properties.get(_FILES) or list_table_files(table_pattern(exec_properties))
        rejected_uri = exec_properties[_REJECTED_URI]

        read = pipeline | "ReadTable" >> transforms.ReadTable(files, spec, split_names, buckets)
        counts = [read[log_transforms.COUNTS]]
        for name in split_names:
            counts.append(read[name]
                          | f"CountExamples[{name}]" >> beam.combiners.Count.Globally()
                          | f"CountKey[{name}]" >> beam.Map(lambda n, key=f"examples.{name}": (key, n)))
        _ = (counts
             | "FlattenCounts" >> beam.Flatten()
             | "CountRecords" >> log_transforms.CountRecords()
             | "WriteCounts" >> beam.Map(write_json, os.path.join(rejected_uri, FLAT_COUNTS_FILE)))
        _ = read[log_transforms.REJECTED] | "WriteRejected" >> log_transforms.WriteRejected(
            os.path.join(rejected_uri, REJECTED_FILE_PREFIX))
        return {name: read[name] for name in split_names}

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Run the Beam pipeline (via the base class), then summarize, record and judge the counts."""
        rejected = artifact_utils.get_single_instance(output_dict[REJECTED_KEY])
        max_fraction = max_rejected_fraction(exec_properties)
        spec = parsing.TableSpec.from_json(exec_properties[TABLE_SPEC_KEY])
        # List the files before Beam starts, so a missing table fails with a plain message.
        files = list_table_files(table_pattern(exec_properties))
        log.info("TableExampleGen: %d file(s): %s", len(files), files)
        fileio.makedirs(rejected.uri)
        exec_properties = {**exec_properties, _REJECTED_URI: rejected.uri, _FILES: files}

        super().Do(input_dict, output_dict, exec_properties)

        flat = take_flat_counts(rejected.uri)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        split_names = artifact_utils.decode_split_names(examples.split_names)
        summary = counts_lib.summarize(flat, split_names, files, list(spec.labels), max_fraction)
        write_json(summary, os.path.join(rejected.uri, COUNTS_FILE))
        _record_properties(rejected, summary, split_names)
        log.info("TableExampleGen: %s", counts_lib.describe(summary))
        error = counts_lib.failure(summary, rejected.uri)
        if error:
            raise TooManyRejected(error)


def _record_properties(artifact: types.Artifact, summary: dict[str, Any], split_names: list[str]) -> None:
    """Main counts as MLMD custom properties (the full summary is counts.json beside them)."""
    rows = summary[parsing.ROWS]
    ints = {"rows_read": rows["read"], "rows_rejected": rows["rejected"],
            "examples_written": summary["examples"]["total"],
            **{f"examples_{name}": summary["examples"][name] for name in split_names}}
    for key, value in ints.items():
        artifact.set_int_custom_property(key, int(value))
    artifact.set_float_custom_property("rejected_fraction", float(summary["rejected_fraction"]))
    artifact.set_json_value_custom_property("rejected_by_reason", rows["rejected_by_reason"])
    artifact.set_string_custom_property("source", counts_lib.SOURCE)
