"""`model`: the architecture and its sizes (the paper's MMoE by default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watchnext.core.config.checks import check, one_of

ARCHITECTURES = ("mmoe", "omoe", "shared_bottom", "cgc", "ple", "single_task")
POSITION_MODES = ("shallow_tower", "input_feature", "none")
POSITION_BIAS_FORMS = ("logit", "log_examination")


@dataclass(frozen=True)
class ModelSection:
    """Architecture and sizes (the paper's MMoE by default)."""

    architecture: Literal["mmoe", "omoe", "shared_bottom", "cgc", "ple", "single_task"] = "mmoe"
    shared_hidden_units: int = 64
    num_experts: int = 4
    expert_units: tuple[int, ...] = (32,)
    # cgc/ple: experts owned by each task, beside the shared ones; ple stacks levels.
    task_experts: int = 1
    ple_levels: int = 2
    gate_dropout: float = 0.1
    tower_units: tuple[int, ...] = (16,)
    position_mode: Literal["shallow_tower", "input_feature", "none"] = "shallow_tower"
    position_dropout: float = 0.1
    position_embedding_dim: int = 4
    shallow_tower_units: tuple[int, ...] = (8,)
    # How the shallow tower's output enters the position-biased heads. "logit" (the paper):
    # b is added to each head's logit. "log_examination": the tower outputs log P(examined) =
    # log sigmoid(b) <= 0, a binary head predicts P(examined) · sigmoid(logit) (a click needs an
    # examination and then relevance, as in PAL, Guo et al., RecSys 2019) and a weighted-logistic
    # head, whose exp(logit) is an expectation, adds it in log space. The additive logit equals
    # the product only while clicks are rare; see docs/model.md, "Position bias".
    position_bias_form: Literal["logit", "log_examination"] = "logit"

    def validate(self, path: str = "model") -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        one_of(self.architecture, ARCHITECTURES, f"{path}.architecture")
        one_of(self.position_mode, POSITION_MODES, f"{path}.position_mode")
        one_of(self.position_bias_form, POSITION_BIAS_FORMS, f"{path}.position_bias_form")
        for rate_key in ("gate_dropout", "position_dropout"):
            rate = getattr(self, rate_key)
            check(0.0 <= rate < 1.0, f"{path}.{rate_key}", f"{rate} must be in [0, 1)")
        for key in ("shared_hidden_units", "num_experts", "task_experts", "ple_levels"):
            check(getattr(self, key) >= 1, f"{path}.{key}", "must be >= 1")
