"""`tuning`: TFX's Tuner, a small hyperparameter search before the Trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watchnext.core.config.checks import check, one_of

# Tuner search algorithms (keras-tuner oracles) and objectives (models/tuner.py).
TUNING_ALGORITHMS = ("random", "bayesian")
TUNING_OBJECTIVES = ("mean_auc", "weighted_loss")
# The search space: each is a TuningSection field listing the values to try, and the name
# of the hyperparameter the Tuner hands the Trainer (models/tuner.apply_hyperparameters).
TUNED_HYPERPARAMETERS = ("num_experts", "expert_width", "learning_rate", "gate_dropout")


@dataclass(frozen=True)
class TuningSection:
    """TFX's Tuner before the Trainer: a small hyperparameter search whose best values train the model.

    Off by default: each trial trains a model from scratch, so a search costs about
    max_trials × train_steps Trainer steps, and it reruns whenever the transformed examples
    change (every new span). Objectives, both measured on the eval split after a trial:
    mean_auc (maximized): the mean AUC of the binary heads, what the Evaluator's blessing
    thresholds are about, scale-free across heads; weighted_loss (minimized): Σ_k
    loss_weight_k × (head k's eval loss averaged over the eval batches), the training
    objective itself, which includes the regression heads.
    """

    enabled: bool = False
    algorithm: Literal["random", "bayesian"] = "random"
    objective: Literal["mean_auc", "weighted_loss"] = "mean_auc"
    # Budget: trials, and Trainer steps per trial (training.batch_size examples per step).
    max_trials: int = 4
    train_steps: int = 300
    eval_steps: int = 50
    # The search space (values to choose from). expert_width sets every layer of
    # model.expert_units; num_experts and gate_dropout are searched only by architectures
    # with experts and gates (mmoe, omoe, cgc, ple; cgc/ple: the shared experts).
    num_experts: tuple[int, ...] = (2, 4, 8)
    expert_width: tuple[int, ...] = (16, 32, 64)
    learning_rate: tuple[float, ...] = (0.001, 0.003, 0.01)
    gate_dropout: tuple[float, ...] = (0.0, 0.1, 0.2)

    def validate(self, path: str = "tuning") -> None:
        """Raise ConfigError naming the key of the first inconsistent value (the objective's fit to
        the heads is checked by Config, which sees both)."""
        one_of(self.algorithm, TUNING_ALGORITHMS, f"{path}.algorithm")
        one_of(self.objective, TUNING_OBJECTIVES, f"{path}.objective")
        for key in ("max_trials", "train_steps", "eval_steps"):
            check(getattr(self, key) >= 1, f"{path}.{key}", "must be >= 1")
        for key in TUNED_HYPERPARAMETERS:
            values = getattr(self, key)
            check(len(values) >= 1, f"{path}.{key}", "needs at least one value to try")
            check(len(set(values)) == len(values), f"{path}.{key}", f"values repeat: {list(values)}")
        check(all(n >= 1 for n in self.num_experts), f"{path}.num_experts", "every value must be >= 1")
        check(all(w >= 1 for w in self.expert_width), f"{path}.expert_width", "every value must be >= 1")
        check(all(0.0 < r < float("inf") for r in self.learning_rate), f"{path}.learning_rate",
              "every value must be a finite number > 0")
        check(all(0.0 <= r < 1.0 for r in self.gate_dropout), f"{path}.gate_dropout",
              "every value must be in [0, 1)")
