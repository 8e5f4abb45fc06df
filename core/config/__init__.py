"""One typed configuration for the whole of watchnext.

Every feature name, head name, label key, size and threshold lives here, once.
The pipeline, the preprocessing_fn, the model and the evaluator all receive a
`Config` (or its JSON form, inside a TFX component's custom_config) and derive
what they need from it, so that changing a name or a size is a one-line edit in
a YAML file rather than a hunt through the code.

A YAML file only lists what differs from the defaults; it is merged key by key
onto `Config()` and validated: an unknown key, a wrong type or an inconsistent
value raises `ConfigError` naming the dotted path of the offending key.

One module per concern: each section is a frozen dataclass that validates its own
fields (`pipeline`, `data`, `log_schema`, `features`, `heads`, `model`, `training`, `evaluation`,
`validation`, `serving`, `tuning`; `log_schema` is a core.log_schema_spec.LogSchema, checked by
`logs`); `config` composes them and checks what spans
sections, with `rules` for what ties two sections; `views` holds the narrower types
Transform, the Trainer/Tuner and the Evaluator receive (their cache keys); `build` turns
mappings into typed dataclasses; `loading` reads YAML.
Import from here: `from watchnext.core.config import Config, load_config`.
"""

from watchnext.core.config.checks import ConfigError
from watchnext.core.config.config import Config, from_dict
from watchnext.core.config.data import DATA_SOURCES, DataSection, TableSection
from watchnext.core.config.evaluation import EvaluationSection
from watchnext.core.config.features import NUMERIC_ENCODINGS, FeaturesSection, IdFeature, NumericEmbedding
from watchnext.core.config.heads import (
    DEFAULT_HEADS,
    HEAD_GROUPS,
    HEAD_TYPES,
    LABEL_TRANSFORMS,
    PRESENCE_LOSSES,
    REGRESSION_LOSSES,
    SCORE_FORMS,
    Head,
    LabelFrom,
)
from watchnext.core.config.loading import load_config
from watchnext.core.config.model import ARCHITECTURES, POSITION_MODES, ModelSection
from watchnext.core.config.pipeline import BEAM_ENVIRONMENT_TYPES, BEAM_PRESETS, PipelineSection
from watchnext.core.config.serving import ServingSection
from watchnext.core.config.training import DISTRIBUTIONS, TrainingSection
from watchnext.core.config.tuning import (
    TUNED_HYPERPARAMETERS,
    TUNING_ALGORITHMS,
    TUNING_OBJECTIVES,
    TuningSection,
)
from watchnext.core.config.validation import ValidationSection
from watchnext.core.config.views import EvaluatorView, TrainerView, TransformView

__all__ = [
    "ARCHITECTURES",
    "BEAM_ENVIRONMENT_TYPES",
    "BEAM_PRESETS",
    "DATA_SOURCES",
    "DEFAULT_HEADS",
    "DISTRIBUTIONS",
    "HEAD_GROUPS",
    "HEAD_TYPES",
    "LABEL_TRANSFORMS",
    "NUMERIC_ENCODINGS",
    "POSITION_MODES",
    "PRESENCE_LOSSES",
    "REGRESSION_LOSSES",
    "SCORE_FORMS",
    "TUNED_HYPERPARAMETERS",
    "TUNING_ALGORITHMS",
    "TUNING_OBJECTIVES",
    "Config",
    "ConfigError",
    "DataSection",
    "EvaluationSection",
    "EvaluatorView",
    "FeaturesSection",
    "Head",
    "IdFeature",
    "LabelFrom",
    "ModelSection",
    "NumericEmbedding",
    "PipelineSection",
    "ServingSection",
    "TableSection",
    "TrainerView",
    "TrainingSection",
    "TransformView",
    "TuningSection",
    "ValidationSection",
    "from_dict",
    "load_config",
]
