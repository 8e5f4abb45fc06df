"""The run plumbing every watchnext ExampleGen executor shares (`RejectingExecutor`).

Both executors extend TFX's BaseExampleGenExecutor, whose `Do` writes the example splits
and sets the payload and file formats, and override `GenerateExamplesByBeam`: the
standard hook, `GetInputSourceToExamplePTransform`, turns one input pattern into examples
and has no place for the rejected records. What they share is the run around it:

1. `prepare` (the subclass) lists the inputs before Beam starts, so a missing input
   fails with a plain message, and hands private exec properties to its Beam pipeline;
2. the Beam pipeline (`GenerateExamplesByBeam`) writes its counters with
   `write_counts_and_rejects`: raw counters to FLAT_COUNTS_FILE, rejected records to
   `rejected-*.jsonl.gz`, both into the RejectedRecords artifact;
3. afterwards the counters become the subclass's summary (counts.json), its main figures
   are recorded as custom properties of the artifact (so they show in ML Metadata), and
   the run fails (TooManyRejected) when the summary says so: records in ≠ examples out +
   rejected, nothing read, or more rejected than `max_rejected_fraction`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, ClassVar

from watchnext.components.example_gen.transforms import CountRecords, WriteRejected
from watchnext.core.errors import TooManyRejected

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

REJECTED_KEY = "rejected"
MAX_REJECTED_FRACTION_KEY = "max_rejected_fraction"
DEFAULT_MAX_REJECTED_FRACTION = 0.01
COUNTS_FILE = "counts.json"
REJECTED_FILE_PREFIX = "rejected"
# Where the Beam pipeline leaves its raw counters for Do to summarize (then removed).
FLAT_COUNTS_FILE = "_flat_counts.json"
# The private exec-property key under which Do hands the RejectedRecords folder to
# GenerateExamplesByBeam (the base class passes the same dict through, as it does for
# '_beam_pipeline_args').
REJECTED_URI = "_rejected_uri"


def input_config(exec_properties: dict[str, Any]) -> example_gen_pb2.Input:
    """The component's input_config (exec properties hold it as JSON)."""
    config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], config)
    return config


def output_config(exec_properties: dict[str, Any]) -> example_gen_pb2.Output:
    """The component's output_config (exec properties hold it as JSON)."""
    config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], config)
    return config


def write_json(value: Any, path: str) -> None:
    with fileio.open(path, "w") as f:
        f.write(json.dumps(value, indent=1, sort_keys=True))


def take_flat_counts(rejected_uri: str) -> dict[str, Any]:
    """The Beam pipeline's raw counters, read once and removed (counts.json replaces them)."""
    path = os.path.join(rejected_uri, FLAT_COUNTS_FILE)
    with fileio.open(path, "r") as f:
        flat = json.loads(f.read())
    fileio.remove(path)
    return flat


def max_rejected_fraction(exec_properties: dict[str, Any]) -> float:
    """The component's rejected-fraction limit (the default when the property is unset)."""
    value = exec_properties.get(MAX_REJECTED_FRACTION_KEY)
    return DEFAULT_MAX_REJECTED_FRACTION if value is None else float(value)


def write_counts_and_rejects(counts: list[beam.pvalue.PCollection], rejected: beam.pvalue.PCollection,
                             rejected_uri: str) -> None:
    """Sum every (count key, n) of `counts` into FLAT_COUNTS_FILE and write `rejected` as
    JSON Lines shards, both into the RejectedRecords folder `rejected_uri`."""
    _ = (counts
         | "FlattenCounts" >> beam.Flatten()
         | "CountRecords" >> CountRecords()
         | "WriteCounts" >> beam.Map(write_json, os.path.join(rejected_uri, FLAT_COUNTS_FILE)))
    _ = rejected | "WriteRejected" >> WriteRejected(os.path.join(rejected_uri, REJECTED_FILE_PREFIX))


def record_properties(artifact: types.Artifact, values: dict[str, Any]) -> None:
    """Set each value as a custom property of its type (int, float, str; dicts and lists as JSON)."""
    for key, value in values.items():
        if isinstance(value, bool | int):
            artifact.set_int_custom_property(key, int(value))
        elif isinstance(value, float):
            artifact.set_float_custom_property(key, value)
        elif isinstance(value, str):
            artifact.set_string_custom_property(key, value)
        else:
            artifact.set_json_value_custom_property(key, value)


class RejectingExecutor(base_example_gen_executor.BaseExampleGenExecutor):
    """An ExampleGen executor with a `rejected` output, counts.json and a rejection limit.

    A subclass names itself (NAME, for messages), builds its Beam pipeline in
    `GenerateExamplesByBeam` (ending in `write_counts_and_rejects`), and says how to
    `prepare` its inputs, `summarize` the counters, which summary figures to record as
    `properties`, and how to `describe` a summary and judge it (`failure`).
    """

    NAME: ClassVar[str] = "ExampleGen"

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Not used: an ExampleGen with a rejected-records output does not fit this hook,
        so GenerateExamplesByBeam is overridden instead."""
        raise NotImplementedError(f"{self.NAME}'s executor builds its pipeline in GenerateExamplesByBeam")

    def prepare(self, output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
                ) -> dict[str, Any]:
        """List and check the inputs before Beam starts; return private exec properties for
        GenerateExamplesByBeam."""
        raise NotImplementedError

    def after_beam(self, exec_properties: dict[str, Any]) -> None:
        """Anything to finish once the Beam pipeline has written the splits (default: nothing)."""

    def summarize(self, flat: dict[str, int], split_names: list[str], exec_properties: dict[str, Any]
                  ) -> dict[str, Any]:
        """The run's summary (counts.json) from the flat counters."""
        raise NotImplementedError

    def properties(self, summary: dict[str, Any], split_names: list[str]) -> dict[str, Any]:
        """The summary's main figures, recorded as custom properties of the RejectedRecords artifact."""
        raise NotImplementedError

    def describe(self, summary: dict[str, Any]) -> str:
        """One paragraph of the summary for the log and error messages."""
        raise NotImplementedError

    def failure(self, summary: dict[str, Any], rejected_uri: str) -> str | None:
        """Why the run must fail (bad accounting, nothing read, too many rejected), or None."""
        raise NotImplementedError

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Run the Beam pipeline (via the base class), then summarize, record and judge the counts."""
        rejected = artifact_utils.get_single_instance(output_dict[REJECTED_KEY])
        private = self.prepare(output_dict, exec_properties)
        fileio.makedirs(rejected.uri)
        exec_properties = {**exec_properties, **private, REJECTED_URI: rejected.uri}

        super().Do(input_dict, output_dict, exec_properties)
        self.after_beam(exec_properties)

        flat = take_flat_counts(rejected.uri)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        split_names = artifact_utils.decode_split_names(examples.split_names)
        summary = self.summarize(flat, split_names, exec_properties)
        write_json(summary, os.path.join(rejected.uri, COUNTS_FILE))
        record_properties(rejected, self.properties(summary, split_names))
        logging.getLogger(type(self).__module__).info("%s: %s", self.NAME, self.describe(summary))
        error = self.failure(summary, rejected.uri)
        if error:
            raise TooManyRejected(error)
