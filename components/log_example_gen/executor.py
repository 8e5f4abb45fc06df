"""LogExampleGen's executor: one span of impression and event logs → labelled tf.Examples.

It stands on the ExampleGen base (example_gen/executor.py: TFX's BaseExampleGenExecutor
with the rejected records, counts.json and the rejection limit) and overrides
`GenerateExamplesByBeam` (as TFX recommends for joins of several sources): the standard
hook, `GetInputSourceToExamplePTransform`, has no place for a second log.

The driver (TFX's FileBasedDriver) has already resolved the span: the impressions
pattern in `input_config` is concrete and `span`/`version` are exec properties. The
events pattern is resolved here from the same span, so this also works where an
orchestrator substitutes its own driver (Kubeflow V2 does for FileBasedExampleGens).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from watchnext.components.example_gen import executor as base
from watchnext.components.example_gen.transforms import COUNTS, CountingDoFn
from watchnext.components.log_example_gen import counts as counts_lib
from watchnext.components.log_example_gen import reading, transforms
from watchnext.components.log_example_gen.split_files import (
    remove_incomplete,
    tfrecord_file_name,
    write_tfrecords,
)
from watchnext.core import log_schema as schema
from watchnext.core.config.logs import log_schema_from_json
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LogSchema

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

EVENTS_PATTERN_KEY = "events_pattern"
MAX_POSITION_KEY = "max_position"
# The declared log schema as JSON (core/config/logs.py: log_schema_to_json); empty: the default.
LOG_SCHEMA_KEY = "log_schema"
# Private exec-property keys that Do hands to GenerateExamplesByBeam (the base class
# passes the same dict through, as it does for '_beam_pipeline_args').
_LOG_FILES = "_log_files"
_SPLIT_URIS = "_split_uris"
_SPILL_DIR = "_spill_dir"
# The join's blocks wait here between reading and joining (transforms.JoinLogsToExampleBatches'
# spill_dir): a hidden folder of the Examples artifact, beside its splits, removed after the run.
SPILL_FOLDER = ".join-shards"

log = logging.getLogger(__name__)


def resolve_pattern(pattern: str, span: int, version: int | None) -> str:
    """Fill {SPAN}/{SPAN:n}, date ({YYYY}{MM}{DD}) and {VERSION} specs the way the TFX driver does."""
    is_span, is_date, is_version = utils.verify_split_pattern_specs(
        example_gen_pb2.Input.Split(name="events", pattern=pattern))
    return utils.get_pattern_for_span_version(pattern, is_span, is_date, is_version, span, version)


def log_schema_of(exec_properties: dict[str, Any]) -> LogSchema:
    """The declared log schema the exec properties carry (the default when absent)."""
    return log_schema_from_json(exec_properties.get(LOG_SCHEMA_KEY) or "")


def log_file_patterns(exec_properties: dict[str, Any]) -> dict[str, str]:
    """The concrete (span-resolved) glob of each log, joined to input_base; no events pattern when
    no label of the declared schema reads events (the events log is then not read at all)."""
    input_config = base.input_config(exec_properties)
    if len(input_config.splits) != 1:
        raise ValueError(f"LogExampleGen reads one impressions pattern; input_config has "
                         f"{len(input_config.splits)} splits: {[s.name for s in input_config.splits]}")
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    span = exec_properties.get(utils.SPAN_PROPERTY_NAME) or 0
    version = exec_properties.get(utils.VERSION_PROPERTY_NAME)
    impressions = input_config.splits[0].pattern
    if re.search(utils.SPAN_FULL_REGEX, impressions):
        # Not resolved by a driver (e.g. Do called directly): resolve with the given span.
        impressions = resolve_pattern(impressions, span, version)
    patterns = {schema.IMPRESSIONS_LOG: os.path.join(input_base, impressions)}
    if log_schema_of(exec_properties).uses_events:
        events = resolve_pattern(exec_properties[EVENTS_PATTERN_KEY], span, version)
        patterns[schema.EVENTS_LOG] = os.path.join(input_base, events)
    return patterns


class SplitBatch(CountingDoFn):
    """Splits each (shard, request_ids, serialized examples) batch and counts `examples.<split>`.

    The split is TFX's own partition function applied to the partition feature (for
    the log schema's partition feature, request_id or the row key, computed once per value from
    the batch's `request_ids`), so split semantics match every other ExampleGen. With
    `split_uris`, each split of the batch is written here as one gzip'd
    TFRecord file, `data_tfrecord-<shard>-of-<shards>.gz` (TFX's file name pattern; a retried
    or duplicated shard replaces its own files whole: see write_tfrecords), instead of one
    Beam element per example through TFX's WriteSplit (a reshuffle and a Beam write costing
    more than the whole join). Without them, each example goes to its split's tagged output.
    """

    def __init__(self, split_names: list[str], buckets: list[int], split_config: example_gen_pb2.SplitConfig,
                 split_uris: dict[str, str] | None = None, shards: int = transforms.JOIN_SHARDS,
                 partition_feature: str = DEFAULT_LOG_SCHEMA.partition_feature):
        super().__init__()
        self._names = split_names
        self._buckets = buckets
        self._split_config = split_config
        self._partition_feature = partition_feature
        self._by_request = split_config.partition_feature_name == partition_feature
        self._split_uris = split_uris
        self._shards = shards

    @classmethod
    def from_split_config(cls, split_config: example_gen_pb2.SplitConfig,
                          split_uris: dict[str, str] | None = None,
                          partition_feature: str = DEFAULT_LOG_SCHEMA.partition_feature) -> SplitBatch:
        """The split of an output config's hash-bucket `split_config`: split k takes buckets
        [Σ_{j<k} hash_buckets_j, Σ_{j≤k} hash_buckets_j), as in every TFX ExampleGen."""
        if not split_config.splits:
            raise ValueError("LogExampleGen needs output_config.split_config with hash-bucket splits "
                             "(e.g. train/eval, partition_feature_name='request_id')")
        buckets: list[int] = []
        for split in split_config.splits:
            buckets.append((buckets[-1] if buckets else 0) + split.hash_buckets)
        return cls([s.name for s in split_config.splits], buckets, split_config, split_uris,
                   partition_feature=partition_feature)

    @property
    def split_names(self) -> list[str]:
        return list(self._names)

    def _split(self, request_id: str, serialized: bytes) -> int:
        from tensorflow.core.example import example_pb2

        if self._by_request:
            example = example_pb2.Example()
            example.features.feature[self._partition_feature].bytes_list.value.append(request_id.encode())
        else:  # another feature, or the whole example: TFX's function on the example itself
            example = example_pb2.Example.FromString(serialized)
        return base_example_gen_executor._PartitionFn(example, len(self._buckets), self._buckets,
                                                      self._split_config)

    def process(self, batch: transforms.ExampleBatch):
        split_of: dict[str, int] = {}
        per_split: list[list[bytes]] = [[] for _ in self._names]
        for rid, example in zip(batch.request_ids, batch.examples, strict=True):
            index = split_of.get(rid) if self._by_request else None
            if index is None:
                index = split_of[rid] = self._split(rid, example)
            per_split[index].append(example)
        for name, examples in zip(self._names, per_split, strict=True):
            self.count(f"examples.{name}", len(examples))
            if self._split_uris is None:
                for example in examples:
                    yield beam.pvalue.TaggedOutput(name, example)
            elif examples:
                name_in_split = tfrecord_file_name(batch.shard, self._shards)
                write_tfrecords(os.path.join(self._split_uris[name], name_in_split), examples)


class Executor(base.RejectingExecutor):
    """Reads, validates and joins one span of logs; writes examples, rejects and counts."""

    NAME = "LogExampleGen"

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]
                               ) -> dict[str, beam.pvalue.PCollection]:
        """Join the logs, split examples by a hash of request_id, write rejects and counts."""
        output_config = base.output_config(exec_properties)
        files = exec_properties.get(_LOG_FILES) or {
            log_name: reading.list_log_files(pattern) for log_name, pattern in
            log_file_patterns(exec_properties).items()}
        max_position = int(exec_properties.get(MAX_POSITION_KEY) or schema.MAX_POSITION)
        log_schema = log_schema_of(exec_properties)

        joined = pipeline | "JoinLogs" >> transforms.JoinLogsToExampleBatches(
            files[schema.IMPRESSIONS_LOG], files.get(schema.EVENTS_LOG, []), max_position,
            log_schema=log_schema, spill_dir=exec_properties.get(_SPILL_DIR))
        split_uris = exec_properties.get(_SPLIT_URIS)
        split = SplitBatch.from_split_config(output_config.split_config, split_uris,
                                             partition_feature=log_schema.partition_feature)
        split_names = split.split_names
        splits = joined[transforms.EXAMPLES] | "SplitByRequest" >> beam.ParDo(split).with_outputs(
            COUNTS, *split_names)
        base.write_counts_and_rejects([joined[COUNTS], splits[COUNTS]], joined[transforms.REJECTED],
                                      exec_properties[base.REJECTED_URI])
        # Do passes the split folders: the splits are written above, and the base class's
        # WriteSplit gets nothing to write. Called without them, the splits are returned.
        return {} if split_uris else {name: splits[name] for name in split_names}

    def prepare(self, output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
                ) -> dict[str, Any]:
        """List both logs' files of the span (a missing log fails with a plain message) and make
        the split folders the Beam pipeline writes into."""
        span = int(exec_properties.get(utils.SPAN_PROPERTY_NAME) or 0)
        files = {}
        for log_name, pattern in log_file_patterns(exec_properties).items():
            try:
                files[log_name] = reading.list_log_files(pattern)
            except FileNotFoundError:
                raise FileNotFoundError(f"LogExampleGen: span {span}: no {log_name} log files match "
                                        f"{pattern}") from None
        if schema.EVENTS_LOG not in files:
            log.info("LogExampleGen: no label of the declared log schema reads events: the events log "
                     "is not read")
            files[schema.EVENTS_LOG] = []
        log.info("LogExampleGen: span %s: %d impression files, %d event files", span,
                 len(files[schema.IMPRESSIONS_LOG]), len(files[schema.EVENTS_LOG]))
        split_uris = _split_uris(output_dict, exec_properties)
        for uri in split_uris.values():
            fileio.makedirs(uri)
        examples_uri = artifact_utils.get_single_uri(output_dict[standard_component_specs.EXAMPLES_KEY])
        return {_LOG_FILES: files, _SPLIT_URIS: split_uris,
                _SPILL_DIR: os.path.join(examples_uri, SPILL_FOLDER)}

    def after_beam(self, exec_properties: dict[str, Any]) -> None:
        spill_dir = exec_properties.get(_SPILL_DIR)
        if spill_dir and fileio.exists(spill_dir):
            fileio.rmtree(spill_dir)
        for uri in exec_properties[_SPLIT_URIS].values():
            removed = remove_incomplete(uri)
            if removed:
                log.info("LogExampleGen: removed %d incomplete file(s) of killed write attempts from %s",
                         removed, uri)
            if not fileio.glob(os.path.join(uri, "*")):  # an empty split still gets a (readable) file
                write_tfrecords(os.path.join(uri, tfrecord_file_name(0, 1)), [])

    def summarize(self, flat: dict[str, int], split_names: list[str], exec_properties: dict[str, Any]
                  ) -> dict[str, Any]:
        span = int(exec_properties.get(utils.SPAN_PROPERTY_NAME) or 0)
        return counts_lib.summarize(flat, split_names, span, exec_properties.get(utils.VERSION_PROPERTY_NAME),
                                    exec_properties[_LOG_FILES], base.max_rejected_fraction(exec_properties),
                                    uses_events=log_schema_of(exec_properties).uses_events)

    def properties(self, summary: dict[str, Any], split_names: list[str]) -> dict[str, Any]:
        imp, ev = summary[schema.IMPRESSIONS_LOG], summary[schema.EVENTS_LOG]
        return {
            "span": int(summary["span"]),
            "impressions_read": int(imp["read"]),
            "impressions_rejected": int(imp["rejected"]),
            "events_read": int(ev["read"]),
            "events_merged": int(ev["merged"]),
            "events_rejected": int(ev["rejected"]),
            "examples_written": int(summary["examples"]["total"]),
            **{f"examples_{name}": int(summary["examples"][name]) for name in split_names},
            **{f"rejected_fraction_{log_name}": float(summary["rejected_fraction"][log_name])
               for log_name in counts_lib.LOGS},
            "rejected_by_reason": {f"{log_name}.{reason}": n for log_name in counts_lib.LOGS
                                   for reason, n in summary[log_name]["rejected_by_reason"].items()},
        }

    def describe(self, summary: dict[str, Any]) -> str:
        return counts_lib.describe(summary)

    def failure(self, summary: dict[str, Any], rejected_uri: str) -> str | None:
        return counts_lib.failure(summary, rejected_uri)


def _split_uris(output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
                ) -> dict[str, str]:
    """Each output split's folder in the Examples artifact (Split-train, Split-eval, …)."""
    input_config = base.input_config(exec_properties)
    output_config = base.output_config(exec_properties)
    examples = output_dict[standard_component_specs.EXAMPLES_KEY]
    names = utils.generate_output_split_names(input_config, output_config)
    for artifact in examples:  # as the base class's Do sets them (it does again, identically)
        artifact.split_names = artifact_utils.encode_split_names(names)
    return {name: artifact_utils.get_split_uri(examples, name) for name in names}
