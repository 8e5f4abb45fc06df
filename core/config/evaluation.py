"""`evaluation`: the Evaluator's blessing rules and the report's slices."""

from __future__ import annotations

from dataclasses import dataclass

from watchnext.core.config.checks import check


@dataclass(frozen=True)
class EvaluationSection:
    """Evaluator blessing rules."""

    # A candidate is not blessed if a binary head's AUC is below the baseline's by more
    # than this (or a regression head's MSE above it by more than this ratio) with
    # `confidence`: judged on the paired interval, not on the point estimate.
    max_auc_drop: float = 0.01
    max_mse_increase_ratio: float = 0.1
    ndcg_cutoffs: tuple[int, ...] = (5, 10)
    # Gate polarization alarm (models/expert_utilization.py): a head's gate counts as
    # polarized on an example when one expert gets more than polarized_gate_weight of it;
    # the run warns when that happens on more than max_polarized_share of eval examples.
    polarized_gate_weight: float = 0.9
    max_polarized_share: float = 0.5
    # One-sided confidence of the paired comparison (components/evaluator/paired.py): refuse only when
    # the candidate is worse beyond the tolerance above at this confidence. 0.95 keeps the
    # refusal rate of an equally good retrain at most ~5% (1 in 20) at any eval-set size.
    confidence: float = 0.95
    # Lower edges of the position slices in the report: 0, 1, 2-4, 5-9, 10+. One slice per
    # slot would be 20 slices, the deep ones too small to read.
    position_buckets: tuple[int, ...] = (0, 1, 2, 5, 10)
    # Examples per serving_default call of the Evaluator (both models score each batch).
    batch_size: int = 1024
    # Evaluate on the eval splits of every span of the training window (as trained),
    # not only the newest span's: more rows, and the same distribution the model fits.
    whole_window: bool = True

    def validate(self, path: str = "evaluation") -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        check(0 < self.polarized_gate_weight < 1, f"{path}.polarized_gate_weight", "must be in (0, 1)")
        check(0 <= self.max_polarized_share <= 1, f"{path}.max_polarized_share", "must be in [0, 1]")
        check(0.5 <= self.confidence < 1, f"{path}.confidence", "must be in [0.5, 1)")
        check(self.max_auc_drop >= 0, f"{path}.max_auc_drop", "must be >= 0")
        check(self.max_mse_increase_ratio >= 0, f"{path}.max_mse_increase_ratio", "must be >= 0")
        check(self.batch_size >= 1, f"{path}.batch_size", "must be >= 1")
        b = self.position_buckets
        check(bool(b) and b[0] == 0 and list(b) == sorted(set(b)), f"{path}.position_buckets",
              "must start at 0 and increase")
