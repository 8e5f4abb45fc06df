"""`Config`: the sections composed, and the names derived from them.

Each section validates its own fields (`<Section>.validate(path)`); `Config.validate` runs
them in turn, and between them the few rules that tie two sections together (rules.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from watchnext.core.config import rules
from watchnext.core.config.build import build
from watchnext.core.config.checks import ConfigError
from watchnext.core.config.data import DataSection
from watchnext.core.config.evaluation import EvaluationSection
from watchnext.core.config.features import FeaturesSection
from watchnext.core.config.heads import DEFAULT_HEADS, Head, LabelFrom, derived_labels
from watchnext.core.config.logs import validate_log_schema
from watchnext.core.config.model import ModelSection
from watchnext.core.config.pipeline import PipelineSection
from watchnext.core.config.sections import Sections
from watchnext.core.config.serving import ServingSection
from watchnext.core.config.training import TrainingSection
from watchnext.core.config.tuning import TuningSection
from watchnext.core.config.validation import ValidationSection
from watchnext.core.log_schema_spec import LogSchema


@dataclass(frozen=True)
class Config(Sections):
    """The whole of watchnext's configuration."""

    pipeline: PipelineSection = field(default_factory=PipelineSection)
    data: DataSection = field(default_factory=DataSection)
    # The declared log (data.source logs): fields, event types, label rules, key fields.
    log_schema: LogSchema = field(default_factory=LogSchema)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    heads: tuple[Head, ...] = DEFAULT_HEADS
    model: ModelSection = field(default_factory=ModelSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
    serving: ServingSection = field(default_factory=ServingSection)
    tuning: TuningSection = field(default_factory=TuningSection)

    # -- derived names (head_names, head(), label_keys: Sections) ------------
    @property
    def derived_labels(self) -> dict[str, LabelFrom]:
        """{label column: rule} of the heads whose label a table's ExampleGen derives."""
        return derived_labels(self.heads)

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

    # -- (de)serialization (to_dict, to_json, replace: Sections) ---------------
    @classmethod
    def from_json(cls, text: str) -> Config:
        return from_dict(json.loads(text), source="<json>")

    def validate(self) -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        self.pipeline.validate("pipeline")
        rules.model_and_inputs_fit(self.model, self.heads, self.features)
        self.data.validate("data")
        self.training.validate("training")
        self.serving.validate("serving")
        rules.derived_labels_fit(self.data, self.features, self.heads)
        rules.table_has_the_columns(self.data, self.features, self.heads)
        if self.data.source == "logs":
            validate_log_schema(self.log_schema, "log_schema")
        self.evaluation.validate("evaluation")
        self.validation.validate("validation")
        self.tuning.validate("tuning")
        rules.tuning_objective_fits(self.tuning, self.heads)


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
