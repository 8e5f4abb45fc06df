"""LogExampleGen: a FileBasedExampleGen that joins impression and event logs.

Built the TFX way so that span handling is TFX's own: the FileBasedDriver finds the
newest span matching the impressions pattern `impressions/span={SPAN:8}/*` under
`input_base` (or the one a static RangeConfig names), one run ingests one span, and
the Examples artifact carries `span` for a downstream Resolver to build a window.
`data.span_format` picks another span spec (hourly `{SPAN:10}`, a plain `{SPAN}`;
core/span_format.py) for both logs' patterns.
Beside `examples` it outputs `rejected` (RejectedRecords: every refused record with
its reason, and the run's counts).
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from watchnext.components.example_gen.component import RejectingExampleGen, RejectingExampleGenSpec
from watchnext.components.example_gen.executor import DEFAULT_MAX_REJECTED_FRACTION
from watchnext.components.log_example_gen import executor
from watchnext.core import log_schema as schema
from watchnext.core.config.logs import log_schema_to_json
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, LogSchema
from watchnext.core.records import is_marker_file
from watchnext.core.span_format import (
    DEFAULT_SPAN_FORMAT,
    SPAN_PREFIX,
    log_pattern,
    parse_span_folder,
    span_folder,
)

from tfx.components.example_gen import driver, utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils, proto_utils


class LogExampleGenSpec(RejectingExampleGenSpec):
    """The ExampleGen base's spec plus the events pattern, the position bound and the declared
    log schema (JSON; absent for the default schema, so that default runs keep their cache keys)."""

    PARAMETERS: ClassVar[dict[str, ExecutionParameter]] = {
        **RejectingExampleGenSpec.PARAMETERS,
        executor.EVENTS_PATTERN_KEY: ExecutionParameter(type=str),
        executor.MAX_POSITION_KEY: ExecutionParameter(type=int),
        executor.LOG_SCHEMA_KEY: ExecutionParameter(type=str, optional=True),
    }


class LogDriver(driver.FileBasedDriver):
    """TFX's FileBasedDriver, also checking the events log of the resolved span and
    folding its files into the input fingerprint (so new late events invalidate the cache).

    TFX finds spans by their impression files only, so a span whose impressions are
    missing (only its events have landed, or its impressions folder is empty) would be
    invisible: a static range naming it fails with TFX's bare "Cannot find matching", and
    the latest-span default silently ingests an older span instead. Both are refused
    here with an error naming the span and what its folders hold. A span folder in
    another format than the pattern's (hourly `span=2026010113` under `{SPAN:8}`) makes
    TFX fail with "Glob pattern does not match regex pattern": that is refused naming
    the folder and `data.span_format`.
    """

    def resolve_exec_properties(self, exec_properties: dict[str, Any], pipeline_info: Any,
                                component_info: Any) -> dict[str, Any]:
        base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        impressions = input_config.splits[0].pattern
        events_pattern = exec_properties[executor.EVENTS_PATTERN_KEY]
        static_span = _static_span(exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY))
        try:
            exec_properties = super().resolve_exec_properties(exec_properties, pipeline_info, component_info)
        except ValueError as e:
            if _FOREIGN_FOLDER_ERRORS.search(str(e)):
                raise ValueError(_foreign_span_folders(base, impressions, str(e))) from e
            span = static_span if static_span is not None else _newest_span(base, events_pattern)
            if "Cannot find matching" not in str(e) or span is None:
                raise
            raise FileNotFoundError(_missing_impressions(base, impressions, events_pattern, span)) from e
        span = exec_properties[utils.SPAN_PROPERTY_NAME]
        if static_span is None:
            # The latest span: a newer span without impressions must not be skipped silently.
            newest = max((s for s in (_newest_span(base, events_pattern),
                                      _newest_span(base, os.path.dirname(impressions))) if s is not None),
                         default=span)
            if newest > span:
                raise FileNotFoundError(_missing_impressions(base, impressions, events_pattern, newest)
                                        + f" The newest span with impressions is {span}.")
        if not executor.log_schema_of(exec_properties).uses_events:
            return exec_properties  # no label reads events: the events log is not needed
        events = executor.resolve_pattern(exec_properties[executor.EVENTS_PATTERN_KEY], span,
                                          exec_properties[utils.VERSION_PROPERTY_NAME])
        pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], events)
        if not [p for p in fileio.glob(pattern) if not is_marker_file(p)]:
            raise FileNotFoundError(f"LogExampleGen: span {span} has impressions but no events log files "
                                    f"match {pattern}")
        fingerprint = exec_properties.get(utils.FINGERPRINT_PROPERTY_NAME) or ""
        exec_properties[utils.FINGERPRINT_PROPERTY_NAME] = (
            fingerprint + "\n" + io_utils.generate_fingerprint(schema.EVENTS_LOG, pattern))
        return exec_properties


# TFX's errors for a file its glob matches but its span regex does not (another width), or
# whose span is not a number.
_FOREIGN_FOLDER_ERRORS = re.compile("Glob pattern does not match regex pattern|Cannot find span number")


def _foreign_span_folders(base: str, pattern: str, tfx_error: str) -> str:
    """Why TFX could not read the spans: the span folders beside `pattern`'s that its spec does not name."""
    parent = os.path.join(base, os.path.dirname(os.path.dirname(pattern)))
    spec = re.search(utils.SPAN_FULL_REGEX, pattern)
    found: list[str] = []
    if spec and os.path.basename(os.path.dirname(pattern)) == SPAN_PREFIX + spec[0] and fileio.isdir(parent):
        names = [name.rstrip("/") for name in fileio.listdir(parent) if name.startswith(SPAN_PREFIX)]
        found = sorted(n for n in names if parse_span_folder(n, spec[0]) is None)
    where = f"{', '.join(found[:3])}{' ...' if len(found) > 3 else ''} in {parent}" if found else parent
    return (f"LogExampleGen: span folders that do not match the pattern {pattern!r} ({where}): set "
            f"data.span_format to the logs' layout (YYYYMMDD, YYYYMMDDHH, integer or {{SPAN:N}}), or move "
            f"the other folders away. TFX: {tfx_error}")


def _static_span(range_config_json: str | None) -> int | None:
    """The span a static RangeConfig names (exec properties hold it as JSON), else None."""
    if not range_config_json:
        return None
    range_config = range_config_pb2.RangeConfig()
    proto_utils.json_to_proto(range_config_json, range_config)
    return range_config.static_range.start_span_number if range_config.HasField("static_range") else None


def _span_glob(base: str, pattern: str, span: int) -> str:
    """`pattern` under `base` for one span, any {VERSION}."""
    resolved = executor.resolve_pattern(re.sub(utils.VERSION_FULL_REGEX, "*", pattern), span, None)
    return os.path.join(base, resolved)


def _newest_span(base: str, pattern: str) -> int | None:
    """The newest span that `pattern` matches under `base` (None: none, or no span spec).

    TFX's own matcher (private, the one FileBasedDriver uses; it only globs, while the
    public calculate_splits_fingerprint_span_and_version also stats every file), so spans
    are parsed exactly as the driver parses them.
    """
    split = example_gen_pb2.Input.Split(name="probe", pattern=pattern)
    try:
        span, _ = utils._get_target_span_version(base, split)
    except ValueError:
        return None
    return span


def _missing_impressions(base: str, impressions: str, events: str, span: int) -> str:
    """Why `span` cannot be ingested: what its impressions and events patterns match."""
    found = f"nothing matches {_span_glob(base, impressions, span)}"
    folder = _span_glob(base, os.path.dirname(impressions), span)
    if folder != os.path.join(base, os.path.dirname(impressions)) and fileio.isdir(folder):  # a span folder
        found = f"its folder {folder} is empty"
    events_glob = _span_glob(base, events, span)
    event_files = [p for p in fileio.glob(events_glob) if not is_marker_file(p)]
    held = (f"only its events have landed ({len(event_files)} files match {events_glob})" if event_files
            else "it has no events files either")
    return (f"LogExampleGen: span {span} has no impression files ({found}); {held}. Ingest it once "
            "both logs have landed, or remove its folders.")


class LogExampleGen(RejectingExampleGen):
    """Joins one span of impression and event logs into labelled tf.Examples.

    Outputs `examples` (Examples, splits from output_config, span/version properties)
    and `rejected` (RejectedRecords). Fails when the rejected fraction of either log
    exceeds `max_rejected_fraction`.
    """

    SPEC_CLASS = LogExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = LogDriver

    def __init__(
        self,
        input_base: str,
        input_config: example_gen_pb2.Input | None = None,
        output_config: example_gen_pb2.Output | None = None,
        range_config: range_config_pb2.RangeConfig | data_types.RuntimeParameter | None = None,
        events_pattern: str = schema.EVENTS_PATTERN,
        max_rejected_fraction: float = DEFAULT_MAX_REJECTED_FRACTION,
        max_position: int = schema.MAX_POSITION,
        output_file_format: int = example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        log_schema: LogSchema = DEFAULT_LOG_SCHEMA,
    ):
        """Args:
        input_base: the logs folder (holding impressions/ and events/).
        input_config: one split whose pattern finds the impressions (default
          schema.IMPRESSIONS_PATTERN); its name does not matter.
        output_config: hash-bucket splits; default train:eval 67:33 by request_id.
        range_config: a static range naming one span; default the latest span.
        events_pattern: the events' pattern under input_base, with the same span spec.
        max_rejected_fraction: fail when more than this fraction of either log is rejected.
        max_position: positions must be < this (the position feature's vocabulary size).
        log_schema: the declared log (fields, event types, label rules, key fields).
        """
        input_config = input_config or example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name=schema.IMPRESSIONS_LOG, pattern=schema.IMPRESSIONS_PATTERN)])
        output_config = output_config or make_output_config(
            eval_percent=33, partition_feature=log_schema.partition_feature)
        _check_patterns(input_config, events_pattern)
        if max_position < 1:
            raise ValueError(f"LogExampleGen: max_position={max_position} must be >= 1")
        super().__init__(input_base, input_config, output_config, max_rejected_fraction,
                         range_config=range_config, output_file_format=output_file_format,
                         events_pattern=events_pattern, max_position=int(max_position),
                         **({} if log_schema.is_default
                            else {executor.LOG_SCHEMA_KEY: log_schema_to_json(log_schema)}))


def _check_patterns(input_config: example_gen_pb2.Input, events_pattern: str) -> None:
    """Both logs must use the same span/date/version specs, or their spans could not be matched."""
    if len(input_config.splits) != 1:
        raise ValueError("LogExampleGen: input_config must have exactly one split (the impressions pattern)")
    impressions = utils.verify_split_pattern_specs(input_config.splits[0])
    events = utils.verify_split_pattern_specs(
        example_gen_pb2.Input.Split(name="events", pattern=events_pattern))
    if impressions != events:
        raise ValueError(f"LogExampleGen: the impressions pattern {input_config.splits[0].pattern!r} and "
                         f"the events pattern {events_pattern!r} must use the same "
                         "{SPAN}/date/{VERSION} specs")


def make_output_config(eval_percent: int, partition_feature: str = DEFAULT_LOG_SCHEMA.partition_feature
                       ) -> example_gen_pb2.Output:
    """train:eval = (100 - eval_percent):eval_percent hash buckets of request_id, so all
    candidates of a request land in the same split (`partition_feature`: the log schema's
    LogSchema.partition_feature; without a request id, the row key: each row by itself)."""
    if not 0 < eval_percent < 100:
        raise ValueError(f"eval_percent={eval_percent} must be in (0, 100)")
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=100 - eval_percent),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_percent)],
        partition_feature_name=partition_feature))


def make_log_example_gen(logs_dir: str, eval_percent: int, max_rejected_fraction: float,
                         span: int | None = None, *, max_position: int = schema.MAX_POSITION,
                         log_schema: LogSchema = DEFAULT_LOG_SCHEMA,
                         span_format: str = DEFAULT_SPAN_FORMAT) -> LogExampleGen:
    """The ExampleGen for `logs_dir` laid out as in schema.py (impressions/span=YYYYMMDD/…).

    span: the span to ingest as an int (e.g. 20260102); None takes the latest one on disk.
    span_format: how span folders are named (`data.span_format`, core/span_format.py).
    """
    range_config = None
    if span is not None:
        if isinstance(span, bool) or not isinstance(span, int) or span < 0:
            raise ValueError(f"span={span!r} must be a non-negative int such as 20260102, or None")
        span_folder(span, span_format)  # a span the format cannot name would match nothing
        range_config = range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
            start_span_number=span, end_span_number=span))
    return LogExampleGen(
        input_base=logs_dir,
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
            name=schema.IMPRESSIONS_LOG, pattern=log_pattern(schema.IMPRESSIONS_LOG, span_format))]),
        output_config=make_output_config(eval_percent, log_schema.partition_feature),
        range_config=range_config,
        events_pattern=log_pattern(schema.EVENTS_LOG, span_format),
        max_rejected_fraction=max_rejected_fraction,
        max_position=max_position,
        log_schema=log_schema,
    )
