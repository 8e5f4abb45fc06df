"""A component's view of the config: only the sections it reads, as its own type.

TFX reuses a component's output when its exec properties are unchanged, so Transform, the
Tuner, the Trainer and the Evaluator are each handed a view of the config rather than the
whole of it (pipeline/cache_keys.py decides what each view keeps). A view is its own frozen
dataclass holding only those sections: `run_fn` reading `config.data` is an AttributeError,
not a silent default. A view validates the sections it holds and the rules between them.

`from_json` reads a view's own JSON (what the pipeline writes) or a whole Config's JSON
(what a test or an in-process caller hands over), validated whole and then narrowed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TypeVar

from watchnext.core.config import rules
from watchnext.core.config.build import build
from watchnext.core.config.checks import ConfigError
from watchnext.core.config.config import Config, from_dict
from watchnext.core.config.evaluation import EvaluationSection
from watchnext.core.config.features import FeaturesSection
from watchnext.core.config.heads import DEFAULT_HEADS, Head, validate_heads
from watchnext.core.config.model import ModelSection
from watchnext.core.config.sections import Sections
from watchnext.core.config.training import TrainingSection
from watchnext.core.config.tuning import TuningSection

V = TypeVar("V", bound="_View")


class _View(Sections):
    """A view's own behaviour: narrowing a Config, and reading a view's or a whole Config's JSON."""

    @classmethod
    def of(cls: type[V], config: Config) -> V:
        """The sections of `config` this view holds, as they are (no reset)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def from_json(cls: type[V], text: str) -> V:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ConfigError("<json>: the top level must be a mapping of sections")
        if set(values) - {f.name for f in dataclasses.fields(cls)}:
            return cls.of(from_dict(values, source="<json>"))
        try:
            view = build(cls, values, "", base=cls())
            view.validate()
        except ConfigError as e:
            raise ConfigError(f"<json>: {e}") from None
        return view


@dataclass(frozen=True)
class TransformView(_View):
    """What preprocessing_fn reads: the features and the heads' label columns."""

    features: FeaturesSection = field(default_factory=FeaturesSection)
    heads: tuple[Head, ...] = DEFAULT_HEADS

    def validate(self) -> None:
        validate_heads(self.heads, "heads")
        self.features.validate("features")
        rules.labels_are_not_inputs(self.features, self.heads)


@dataclass(frozen=True)
class TrainerView(_View):
    """What run_fn and tuner_fn read: the model, its inputs and heads, training and tuning, and the
    evaluation section's gate-polarization thresholds (the utilization check after training)."""

    features: FeaturesSection = field(default_factory=FeaturesSection)
    heads: tuple[Head, ...] = DEFAULT_HEADS
    model: ModelSection = field(default_factory=ModelSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    tuning: TuningSection = field(default_factory=TuningSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)

    def validate(self) -> None:
        rules.model_and_inputs_fit(self.model, self.heads, self.features)
        self.training.validate("training")
        self.evaluation.validate("evaluation")
        self.tuning.validate("tuning")
        rules.tuning_objective_fits(self.tuning, self.heads)


@dataclass(frozen=True)
class EvaluatorView(_View):
    """What the Evaluator reads: slicing and request columns, the heads, the blessing rules."""

    features: FeaturesSection = field(default_factory=FeaturesSection)
    heads: tuple[Head, ...] = DEFAULT_HEADS
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)

    def validate(self) -> None:
        validate_heads(self.heads, "heads")
        self.features.validate("features")
        rules.labels_are_not_inputs(self.features, self.heads)
        self.evaluation.validate("evaluation")
