"""The Tuner's `tuner_fn`: a small hyperparameter search whose best values train the served model.

TFX's Tuner component (on when `tuning.enabled`) calls `tuner_fn`, runs the keras-tuner
search it returns, and writes the best hyperparameters as an artifact; the Trainer gets
them as `fn_args.hyperparameters` and applies them with the same `apply_hyperparameters`,
so a trial and the final model are built from the same Config by the same `build_model`,
and read and fit through the Trainer's own path (models/fit.py).

The search space is `tuning`'s lists of values (config.TUNED_HYPERPARAMETERS):
    num_experts   → model.num_experts (mmoe/omoe experts; cgc/ple shared experts)
    expert_width  → every layer of model.expert_units
    learning_rate → training.learning_rate (Adam)
    gate_dropout  → model.gate_dropout
Architectures without experts and gates (shared_bottom, single_task) do not search
num_experts and gate_dropout: they would only spend trials on settings the model ignores.

keras-tuner is pinned to 1.3.5: it binds Keras through TensorFlow, which here is tf_keras
(TF_USE_LEGACY_KERAS=1), so it accepts the tfrs/tf_keras model; 1.4 and later build on
Keras 3 and reject tf_keras models.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import TUNED_HYPERPARAMETERS, Config, TrainerView
from watchnext.core.contract import CONFIG_KEY
from watchnext.models import fit
from watchnext.models.distribution import strategy_from_config
from watchnext.models.heads import label_priors
from watchnext.models.model import WatchNextModel, build_model

import keras_tuner
import tf_keras
from keras_tuner.engine import tuner as keras_tuner_engine
from tfx import v1 as tfx

log = logging.getLogger(__name__)

# Mixing layers with experts and softmax gates: the only ones num_experts and gate_dropout change.
MIXTURE_ARCHITECTURES = ("mmoe", "omoe", "cgc", "ple")
# The tuner's working files (oracle state, one checkpoint per trial) under fn_args.working_dir.
PROJECT_NAME = "watchnext_tuning"
# The eval split's metrics as Keras logs them: "val_" + the model's metric name.
_VALIDATION_PREFIX = "val_"


# ---------------------------------------------------------------------------
# Hyperparameters ↔ Config.


def searched_hyperparameters(config: Config) -> tuple[str, ...]:
    """The hyperparameters `config.model.architecture` is searched over (see the module docstring)."""
    if config.model.architecture in MIXTURE_ARCHITECTURES:
        return TUNED_HYPERPARAMETERS
    return tuple(name for name in TUNED_HYPERPARAMETERS if name not in ("num_experts", "gate_dropout"))


def search_space(config: Config) -> keras_tuner.HyperParameters:
    """One Choice per searched hyperparameter, over the values `config.tuning` lists."""
    hp = keras_tuner.HyperParameters()
    for name in searched_hyperparameters(config):
        hp.Choice(name, list(getattr(config.tuning, name)))
    return hp


def hyperparameter_values(hyperparameters: Any) -> dict[str, Any]:
    """{name: value} from a keras_tuner.HyperParameters, its `get_config()` dict (what TFX's
    Trainer passes as fn_args.hyperparameters) or a plain {name: value} mapping."""
    if isinstance(hyperparameters, keras_tuner.HyperParameters):
        return dict(hyperparameters.values)
    if isinstance(hyperparameters, Mapping):
        if "values" in hyperparameters and "space" in hyperparameters:
            return dict(hyperparameters["values"])
        return dict(hyperparameters)
    raise TypeError(f"hyperparameters must be keras_tuner.HyperParameters or a mapping, "
                    f"got {type(hyperparameters).__name__}")


def apply_hyperparameters(config: Config, hyperparameters: Any) -> Config:
    """A copy of `config` with the given hyperparameters set (those absent keep the config's value).

    The one mapping from hyperparameters to the model: each trial is built from its
    result, and so is the Trainer's model from the Tuner's best values.
    """
    values = hyperparameter_values(hyperparameters)
    unknown = sorted(set(values) - set(TUNED_HYPERPARAMETERS))
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}: the Tuner searches "
                         f"{list(TUNED_HYPERPARAMETERS)} (config tuning)")
    model, training = config.model, config.training
    if "num_experts" in values:
        model = dataclasses.replace(model, num_experts=int(values["num_experts"]))
    if "expert_width" in values:
        width = int(values["expert_width"])
        model = dataclasses.replace(model, expert_units=tuple(width for _ in model.expert_units))
    if "gate_dropout" in values:
        model = dataclasses.replace(model, gate_dropout=float(values["gate_dropout"]))
    if "learning_rate" in values:
        training = dataclasses.replace(training, learning_rate=float(values["learning_rate"]))
    return config.replace(model=model, training=training)


def tuned_settings(config: Config) -> dict[str, Any]:
    """The config values the search space sets, for logs ("which model did this run train?")."""
    m = config.model
    return {"num_experts": m.num_experts, "expert_units": list(m.expert_units),
            "learning_rate": config.training.learning_rate, "gate_dropout": m.gate_dropout}


# ---------------------------------------------------------------------------
# Objective.


def objective(config: Config) -> keras_tuner.Objective:
    """The quantity trials are ranked by (see TuningSection), named as it appears in Keras logs."""
    direction = "max" if config.tuning.objective == "mean_auc" else "min"
    return keras_tuner.Objective(_VALIDATION_PREFIX + config.tuning.objective, direction)


def objective_value(config: Config, logs: Mapping[str, float]) -> float:
    """The objective from one epoch's Keras logs (eval-split metrics under "val_<metric>").

    mean_auc: mean over binary heads of "<head>_auc" (the eval AUC of its ranking task).
    weighted_loss: Σ_k loss_weight_k · "<head>_loss" (a Mean over the eval batches; the
    plain "val_loss" is only the last eval batch's loss, so it is not used).
    """
    suffix = "auc" if config.tuning.objective == "mean_auc" else "loss"
    heads = [h for h in config.heads if h.type == "binary" or suffix == "loss"]
    keys = [f"{_VALIDATION_PREFIX}{h.name}_{suffix}" for h in heads]
    missing = [k for k in keys if k not in logs]
    if missing:
        raise KeyError(f"tuning.objective {config.tuning.objective}: the fit logs have no {missing}; "
                       f"they have {sorted(logs)}")
    values = [float(logs[k]) for k in keys]
    if suffix == "auc":
        return sum(values) / len(values)
    return sum(h.loss_weight * v for h, v in zip(heads, values, strict=True))


# ---------------------------------------------------------------------------
# The search.


class WatchNextHyperModel(keras_tuner.HyperModel):
    """Builds the ranker for one trial's hyperparameters and reports the objective after fitting it."""

    def __init__(self, config: Config, vocab_sizes: Mapping[str, int],
                 output_biases: Mapping[str, float] | None = None) -> None:
        super().__init__(name="watchnext")
        self.config = config
        self.vocab_sizes = dict(vocab_sizes)
        self.output_biases = dict(output_biases or {})

    def build(self, hp: keras_tuner.HyperParameters) -> WatchNextModel:
        config = apply_hyperparameters(self.config, hp)
        return fit.compile_model(build_model(config, self.vocab_sizes, self.output_biases), config)

    def fit(self, hp: keras_tuner.HyperParameters, model: WatchNextModel, *args: Any, **kwargs: Any
            ) -> dict[str, float]:
        """model.fit, then {objective: value, every eval metric: value} of its last epoch."""
        start = time.time()
        history = model.fit(*args, **kwargs)
        last = {k: float(v[-1]) for k, v in history.history.items() if k.startswith(_VALIDATION_PREFIX)}
        value = objective_value(self.config, last)
        if not math.isfinite(value):
            # A failed trial: keras-tuner records it and moves on to the next one.
            raise keras_tuner.errors.FailedTrialError(f"objective is {value} for {hp.values}")
        name = objective(self.config).name
        log.info("tuning trial %s: %s = %.4f (%.0f s)", hp.values, name, value, time.time() - start)
        return {name: value, **last}


def make_tuner(config: Config, vocab_sizes: Mapping[str, int], directory: str,
               output_biases: Mapping[str, float] | None = None) -> keras_tuner.Tuner:
    """The keras-tuner Tuner for `config.tuning`, keeping its files in `directory`; every
    trial's towers start at `output_biases` (see models.heads.label_priors), as the Trainer's."""
    _check_keras_binding()
    t = config.tuning
    algorithms = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization}
    strategy = strategy_from_config(config) if config.training.distribution != "default" else None
    return algorithms[t.algorithm](
        hypermodel=WatchNextHyperModel(config, vocab_sizes, output_biases),
        objective=objective(config),
        max_trials=t.max_trials,
        seed=config.training.seed,
        # The space is declared here, whole: a build may not add a hyperparameter nobody configured.
        hyperparameters=search_space(config),
        tune_new_entries=False,
        allow_new_entries=False,
        distribution_strategy=strategy,
        directory=directory,
        project_name=PROJECT_NAME,
        # A rerun searches again rather than silently reloading an earlier search's trials.
        overwrite=True,
    )


def _check_keras_binding() -> None:
    """Fail clearly when keras-tuner is bound to another Keras than the model's tf_keras."""
    bound = keras_tuner_engine.keras.models.Model
    if not issubclass(WatchNextModel, bound):
        raise RuntimeError(
            f"keras-tuner {keras_tuner.__version__} checks models against {bound.__module__}, not tf_keras: "
            "import watchnext (which sets TF_USE_LEGACY_KERAS=1) before TensorFlow, and use the pinned "
            "keras-tuner 1.3.5 (1.4+ imports Keras 3 and rejects tf_keras models)")


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """Called by the TFX Tuner: the tuner and the fit arguments each trial gets (models/fit.py's,
    as the Trainer's: a trial whose loss stops being finite fails and the search goes on)."""
    config = TrainerView.from_json(fn_args.custom_config[CONFIG_KEY])
    tf_keras.utils.set_random_seed(config.training.seed)
    inputs = fit.training_inputs(fn_args, fn_args.transform_graph_path, config)
    log.info("tuning: %s search, %d trials of %d steps, objective %s, space %s", config.tuning.algorithm,
             config.tuning.max_trials, fn_args.train_steps, objective(config).name,
             {name: list(getattr(config.tuning, name)) for name in searched_hyperparameters(config)})
    tuner = make_tuner(config, inputs.vocab_sizes, fn_args.working_dir, label_priors(config, inputs.train))
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": inputs.train,
        **fit.fit_arguments(fn_args.train_steps, validation=inputs.validation,
                            validation_steps=inputs.validation_steps),
    })
