"""TableExampleGen: a FileBasedExampleGen for CSV or Parquet tables (any tabular multi-task data).

TFX's FileBasedDriver fingerprints the matched files, so the component is a cache hit
until the table changes. Outputs `examples` (splits train/eval and, when configured,
test) and `rejected` (RejectedRecords, from the ExampleGen base as LogExampleGen's: every
refused row with its file, line and reason, and counts.json).
"""

from __future__ import annotations

import os
from typing import ClassVar

from watchnext.components.example_gen.component import RejectingExampleGen, RejectingExampleGenSpec
from watchnext.components.table_example_gen import executor
from watchnext.components.table_example_gen.parsing import TableSpec
from watchnext.core.config import Config

from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types.component_spec import ExecutionParameter

# Output split names, in the order of data.table's train/eval/test percentages.
SPLITS = ("train", "eval", "test")
INPUT_SPLIT = "table"


class TableExampleGenSpec(RejectingExampleGenSpec):
    """The ExampleGen base's spec plus the table description."""

    PARAMETERS: ClassVar[dict[str, ExecutionParameter]] = {
        **RejectingExampleGenSpec.PARAMETERS,
        executor.TABLE_SPEC_KEY: ExecutionParameter(type=str),
    }


class TableExampleGen(RejectingExampleGen):
    """Reads CSV or Parquet files into typed, labelled tf.Examples split by a seeded hash of (file, line)."""

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
        super().__init__(
            input_base,
            example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=INPUT_SPLIT, pattern=pattern)]),
            make_output_config(split_percents), max_rejected_fraction,
            output_file_format=output_file_format, table_spec=table_spec.to_json())


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
