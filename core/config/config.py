"""`Config`: the sections composed, the names derived from them, and the checks that span sections.

Each section validates its own fields (`<Section>.validate(path)`); `Config.validate` runs
them in turn and then the few rules that tie two sections together (a label must not be an
input, a table must have every column the features name, ...), each naming the key to fix.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from watchnext.core.config.build import build
from watchnext.core.config.checks import ConfigError, check
from watchnext.core.config.data import DataSection
from watchnext.core.config.evaluation import EvaluationSection
from watchnext.core.config.features import FeaturesSection
from watchnext.core.config.heads import DEFAULT_HEADS, Head, LabelFrom, validate_heads
from watchnext.core.config.model import ModelSection
from watchnext.core.config.pipeline import PipelineSection
from watchnext.core.config.serving import ServingSection
from watchnext.core.config.training import TrainingSection
from watchnext.core.config.tuning import TuningSection
from watchnext.core.config.validation import ValidationSection


@dataclass(frozen=True)
class Config:
    """The whole of watchnext's configuration."""

    pipeline: PipelineSection = field(default_factory=PipelineSection)
    data: DataSection = field(default_factory=DataSection)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    heads: tuple[Head, ...] = DEFAULT_HEADS
    model: ModelSection = field(default_factory=ModelSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
    serving: ServingSection = field(default_factory=ServingSection)
    tuning: TuningSection = field(default_factory=TuningSection)

    # -- derived names -----------------------------------------------------
    @property
    def head_names(self) -> list[str]:
        return [h.name for h in self.heads]

    def head(self, name: str) -> Head:
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(f"no head named {name!r}; heads are {self.head_names}")

    @property
    def label_keys(self) -> list[str]:
        """Every label-like column: labels and presence indicators (never model inputs)."""
        keys = [h.label for h in self.heads] + [h.presence for h in self.heads if h.presence]
        return list(dict.fromkeys(keys))

    @property
    def derived_labels(self) -> dict[str, LabelFrom]:
        """{label column: rule} of the heads whose label a table's ExampleGen derives."""
        return {h.label: h.label_from for h in self.heads if h.label_from.column}

    @property
    def table_numeric_columns(self) -> list[str]:
        """Columns a table's ExampleGen parses as numbers: numeric features and the label and
        presence columns read as they are. Every other column stays a string."""
        derived = self.derived_labels
        names = list(self.features.numeric) + [k for k in self.label_keys if k not in derived]
        return list(dict.fromkeys(names))

    @property
    def data_path(self) -> str:
        """Where the data are: the logs folder, or the table's CSV file or glob."""
        return self.data.table.path if self.data.source == "table" else self.data.logs_dir

    def with_data_path(self, path: str) -> Config:
        """A copy reading the data at `path` (what `--logs` sets, for either source)."""
        d = self.data
        data = (dataclasses.replace(d, table=dataclasses.replace(d.table, path=path))
                if d.source == "table" else dataclasses.replace(d, logs_dir=path))
        return self.replace(data=data)

    @property
    def serving_dir(self) -> str:
        return self.serving.serving_dir or os.path.join(self.pipeline.output_dir, "serving")

    # -- (de)serialization ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return from_dict(json.loads(text), source="<json>")

    def replace(self, **sections: Any) -> Config:
        """A copy with whole sections replaced (`cfg.replace(training=...)`)."""
        new = dataclasses.replace(self, **sections)
        new.validate()
        return new

    def validate(self) -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        self.pipeline.validate("pipeline")
        self.model.validate("model")
        validate_heads(self.heads, "heads")
        self.features.validate("features")
        _check_labels_are_not_inputs(self)
        _check_position_features(self)
        self.data.validate("data")
        self.training.validate("training")
        self.serving.validate("serving")
        _check_derived_labels(self)
        _check_table_columns(self)
        self.evaluation.validate("evaluation")
        self.validation.validate("validation")
        self.tuning.validate("tuning")
        check(self.tuning.objective != "mean_auc" or any(h.type == "binary" for h in self.heads),
              "tuning.objective", "mean_auc needs at least one binary head; use weighted_loss")


# ---------------------------------------------------------------------------
# Rules that tie two sections together.


def _check_labels_are_not_inputs(config: Config) -> None:
    """Labels (and presence flags) never feed the model, nor collide with an encoding's output."""
    inputs = config.features.inputs
    for i, e in enumerate(config.features.numeric_embeddings):
        check(e.output_key not in config.label_keys, f"features.numeric_embeddings[{i}] ({e.name}).name",
              f"its encoding's output {e.output_key!r} is already a feature or label name")
    for name in config.label_keys:
        check(name not in inputs, "heads", f"label {name!r} is also a model input")


def _check_position_features(config: Config) -> None:
    """The position mode's bias features exist (data without position need mode none)."""
    mode = config.model.position_mode
    needs = {"shallow_tower": ("position", "device"), "input_feature": ("position",)}
    for key in needs.get(mode, ()):
        check(bool(getattr(config.features, key)), "model.position_mode",
              f"{mode!r} needs features.{key}, which is empty (data without "
              "position): set model.position_mode to none")


def _check_derived_labels(config: Config) -> None:
    """A head's `label_from` rule: only for tables, binary heads, and never from an input column."""
    inputs = config.features.inputs
    for i, h in enumerate(config.heads):
        rule, where = h.label_from, f"heads[{i}] ({h.name}).label_from"
        if not (rule.column or rule.positive_values):
            continue
        check(config.data.source == "table", where, "labels are derived while reading a table: needs "
              "data.source table (LogExampleGen computes the log labels itself)")
        rule.validate(where)
        check(h.type == "binary", where, f"derives a 0/1 label, so the head must be binary, not {h.type}")
        check(rule.column not in inputs, f"{where}.column",
              f"{rule.column!r} is also a model input: the label would leak into the features")


def _check_table_columns(config: Config) -> None:
    """A table with a column list has every column the features and heads name."""
    columns = config.data.table.columns
    if config.data.source != "table" or not columns:
        return  # names come from each file's header row, checked while reading
    derived = config.derived_labels
    used = {"features.ids": [f.name for f in config.features.ids],
            "features.numeric": config.features.numeric,
            "features.slices": config.features.slices,
            "heads (labels)": [k for k in config.label_keys if k not in derived],
            "heads (label_from.column)": [r.column for r in derived.values()]}
    for key, names in used.items():
        for name in names:
            check(name in columns, key, f"{name!r} is not one of data.table.columns")
    for label, rule in derived.items():
        check(label not in columns or label == rule.column, "heads",
              f"derived label {label!r} is also a column of the table: name the head's label otherwise")


def from_dict(values: dict[str, Any], source: str = "<dict>") -> Config:
    """Merge `values` onto the defaults and validate. Lists replace lists whole."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        cfg = build(Config, values, "", base=Config())
        cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg
