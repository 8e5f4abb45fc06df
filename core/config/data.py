"""`data`: which data feed the pipeline (logs or a table) and how they are ingested."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from watchnext.core.config.checks import check, one_of
from watchnext.core.span_format import DEFAULT_SPAN_FORMAT, span_spec

DATA_SOURCES = ("logs", "table")


@dataclass(frozen=True)
class TableSection:
    """A table of rows in CSV or Parquet files (`data.source: table`): any tabular multi-task data.

    Column types follow from how the config uses each column, so no name is listed
    twice: columns in `features.numeric` and the label (and presence) columns of heads
    without `label_from` are numbers; every other column is kept as a string.
    """

    # A file or glob: Parquet when the name ends in .parquet or .pq, else CSV (gzip'd when the
    # name ends in .gz). `watchnext run --logs PATH` sets it.
    path: str = ""
    # Column names in file order, for CSV files without a header row. Empty: the first line of
    # each CSV file is its header. A Parquet file names its columns; this list, if set, picks them.
    columns: tuple[str, ...] = ()
    delimiter: str = ","
    # Percentages of rows per split; a row's split is a hash of (split_seed, file name, line
    # number), so the same seed gives the same split. The test split is held out for
    # benchmarks: the Trainer reads train and eval, the Evaluator eval.
    train_percent: int = 80
    eval_percent: int = 20
    test_percent: int = 0
    split_seed: int = 0

    def validate(self, path: str = "data.table") -> None:
        """The splits and the column list (checked only when the data are a table)."""
        check(self.train_percent > 0 and self.eval_percent > 0 and self.test_percent >= 0, path,
              "train_percent and eval_percent must be > 0 and test_percent >= 0")
        total = self.train_percent + self.eval_percent + self.test_percent
        check(total == 100, path, f"train_percent + eval_percent + test_percent is {total}, not 100")
        check(len(self.delimiter) == 1, f"{path}.delimiter", f"{self.delimiter!r} must be one character")
        check(len(set(self.columns)) == len(self.columns), f"{path}.columns",
              f"names repeat: {list(self.columns)}")


@dataclass(frozen=True)
class DataSection:
    """Which data feed the pipeline and how they are ingested."""

    # logs: impression and event logs, one folder per daily span (LogExampleGen);
    # table: rows of CSV or Parquet files described by `table` (TableExampleGen).
    source: Literal["logs", "table"] = "logs"
    # Folder of impression/event logs (see README, "Log schema"). Empty: simulate.
    logs_dir: str = ""
    # How many of the newest daily spans to train on.
    window_spans: int = 1
    # How span folders are named: YYYYMMDD (span=20260101), YYYYMMDDHH (hourly), integer
    # (span=42), or a TFX span spec {SPAN:N} (N digits). The simulator writes YYYYMMDD only.
    span_format: str = DEFAULT_SPAN_FORMAT
    # Percentage of requests (by hash of request_id) that go to the eval split; without a request
    # id (log_schema.request_id ""), of rows, by hash of each row's key (user_id, item_id).
    eval_percent: int = 20
    # The ExampleGen fails when more than this fraction of records is rejected.
    max_rejected_fraction: float = 0.01
    # Simulated log used when logs_dir is empty.
    simulate_days: int = 1
    simulate_impressions_per_day: int = 20000
    simulate_seed: int = 7
    table: TableSection = field(default_factory=TableSection)

    def validate(self, path: str = "data") -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        check(0 < self.eval_percent < 100, f"{path}.eval_percent", "must be in (0, 100)")
        check(self.window_spans >= 1, f"{path}.window_spans", "must be >= 1")
        check(0 <= self.max_rejected_fraction <= 1, f"{path}.max_rejected_fraction", "must be in [0, 1]")
        one_of(self.source, DATA_SOURCES, f"{path}.source")
        try:
            span_spec(self.span_format)
        except ValueError as e:
            check(False, f"{path}.span_format", str(e))
        if self.source != "table":
            return
        check(self.window_spans == 1, f"{path}.window_spans", "a table has no daily spans: must be 1")
        self.table.validate(f"{path}.table")
