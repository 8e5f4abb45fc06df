"""TableExampleGen: a FileBasedExampleGen for CSV tables (any tabular multi-task data).

TFX's FileBasedDriver fingerprints the matched files, so the component is a cache hit
until the table changes. Outputs `examples` (splits train/eval and, when configured,
test) and `rejected` (RejectedRecords, as LogExampleGen's: every refused row with its
file, line and reason, and counts.json).
"""

from __future__ import annotations

import os
from typing import ClassVar

from watchnext.components.log_example_gen.artifacts import RejectedRecords
from watchnext.components.log_example_gen.executor import MAX_REJECTED_FRACTION_KEY, REJECTED_KEY
from watchnext.components.table_example_gen import executor
from watchnext.components.table_example_gen.parsing import TableSpec
from watchnext.core.config import Config

from tfx import types
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

# Output split names, in the order of data.table's train/eval/test percentages.
SPLITS = ("train", "eval", "test")
INPUT_SPLIT = "table"


class TableExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """FileBasedExampleGen's spec plus the table description, the rejection limit and `rejected`."""

    PARAMETERS: ClassVar[dict[str, ExecutionParameter]] = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        executor.TABLE_SPEC_KEY: ExecutionParameter(type=str),
        MAX_REJECTED_FRACTION_KEY: ExecutionParameter(type=float),
    }
    OUTPUTS: ClassVar[dict[str, ChannelParameter]] = {
        **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
        REJECTED_KEY: ChannelParameter(type=RejectedRecords),
    }


class TableExampleGen(FileBasedExampleGen):
    """Reads CSV files into typed, labelled tf.Examples split by a seeded hash of (file, line)."""

    SPEC_CLASS = TableExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str, pattern: str, table_spec: TableSpec,
                 split_percents: tuple[int, ...], max_rejected_fraction: float,
                 output_file_format: int = example_gen_pb2.FORMAT_TFRECORDS_GZIP):
        """Args:
        input_base: the folder of the table's files.
        pattern: a file name or glob under input_base.
        table_spec: columns, types, derived labels, delimiter and split seed.
        split_percents: percentages of rows for train, eval and (optionally) test; sum 100.
        max_rejected_fraction: fail when more than this fraction of rows is rejected.
        """
        if not 0.0 <= max_rejected_fraction <= 1.0:
            raise ValueError(f"TableExampleGen: max_rejected_fraction={max_rejected_fraction} "
                             "must be in [0, 1]")
        spec = TableExampleGenSpec(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name=INPUT_SPLIT, pattern=pattern)]),
            output_config=make_output_config(split_percents),
            custom_config=None,
            range_config=None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=output_file_format,
            table_spec=table_spec.to_json(),
            max_rejected_fraction=float(max_rejected_fraction),
            examples=types.Channel(type=standard_artifacts.Examples),
            rejected=types.Channel(type=RejectedRecords),
        )
        # FileBasedExampleGen.__init__ builds the standard spec; build ours instead.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)


def make_output_config(split_percents: tuple[int, ...]) -> example_gen_pb2.Output:
    """train/eval(/test) splits with their percentages as hash buckets (splits of 0% are left out)."""
    if len(split_percents) not in (2, 3) or sum(split_percents) != 100 or min(split_percents[:2]) <= 0:
        raise ValueError(f"split_percents={split_percents}: train and eval > 0, optional test, sum 100")
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=percent)
        for name, percent in zip(SPLITS[:len(split_percents)], split_percents, strict=True) if percent > 0]))


def table_spec(config: Config) -> TableSpec:
    """The TableSpec the config describes (column types follow from how the config uses each column)."""
    derived = config.derived_labels
    required = ([f.name for f in config.features.ids] + list(config.features.numeric)
                + list(config.features.slices) + [k for k in config.label_keys if k not in derived]
                + [rule.column for rule in derived.values()])
    t = config.data.table
    return TableSpec(columns=t.columns, numeric=tuple(config.table_numeric_columns),
                     labels={label: (rule.column, rule.positive_values) for label, rule in derived.items()},
                     required=tuple(dict.fromkeys(required)), delimiter=t.delimiter, split_seed=t.split_seed)


def split_path(path: str) -> tuple[str, str]:
    """(input_base, pattern) for a file, a glob or a folder (every file in it)."""
    if "://" not in path:
        path = os.path.abspath(os.path.expanduser(path))
    if fileio.exists(path) and fileio.isdir(path):
        return path, "*"
    return os.path.dirname(path), os.path.basename(path)


def make_table_example_gen(config: Config, path: str = "") -> TableExampleGen:
    """The ExampleGen for `config.data.table`, reading `path` (default data.table.path)."""
    path = path or config.data.table.path
    if not path:
        raise ValueError("data.source is table but no table path is given: set data.table.path in the "
                         "config or pass `watchnext run --logs PATH`")
    input_base, pattern = split_path(path)
    t = config.data.table
    return TableExampleGen(input_base=input_base, pattern=pattern, table_spec=table_spec(config),
                           split_percents=(t.train_percent, t.eval_percent, t.test_percent),
                           max_rejected_fraction=config.data.max_rejected_fraction)
