"""A model's eval scores on a featurized simulation, beside chance and the simulator's oracles.

Shared by the learning tests, the benchmarks and scripts/check_variants.py: the eval
impressions of `datasets.FeaturizedSimulation` carry the simulator's truth, so a head's
AUC can be read as a share of the best AUC any scorer could reach (`HeadScore`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core import log_schema as schema
from watchnext.core.config import Config
from watchnext.pipeline.datasets import FeaturizedSimulation

import numpy as np
import tensorflow as tf


def label_probability(truth: dict[str, np.ndarray], label: str) -> np.ndarray:
    """P(label = 1) for an impression in the simulated world (the Bayes-optimal scorer).

    click = examined · Bernoulli(p_click); like = click · Bernoulli(p_like);
    dismiss = examined · Bernoulli(p_dismiss) (see simulate.py's module docstring).
    """
    e = truth["examination"]
    return {schema.CLICK: e * truth["p_click"],
            schema.LIKE: e * truth["p_click"] * truth["p_like"],
            schema.DISMISS: e * truth["p_dismiss"]}[label]


def relevance_probability(truth: dict[str, np.ndarray], label: str) -> np.ndarray:
    """P(label = 1 | examined): the label probability with the position effect taken out."""
    return label_probability(truth, label) / truth["examination"]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (Mann–Whitney, ties counted half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels) > 0.5, np.asarray(scores)))


def null_auc_standard_error(labels: np.ndarray) -> float:
    """Standard error of the AUC of a scorer unrelated to the labels (AUC = 0.5).

    Hanley & McNeil (1982) at A = 0.5 (Q1 = Q2 = 1/3), which is the exact variance of the
    Mann–Whitney statistic under the null: (n1 + n0 + 1) / (12 · n1 · n0).
    """
    positives = int(np.sum(np.asarray(labels) > 0.5))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs both classes; got {positives} positives and {negatives} negatives")
    return float(np.sqrt((positives + negatives + 1) / (12.0 * positives * negatives)))


@dataclass(frozen=True)
class HeadScore:
    """One binary head's eval AUC beside chance and the simulator's oracles."""

    head: str
    auc: float
    # AUC of the true P(label) (examination included): the best any scorer can expect.
    oracle_auc: float
    # AUC of P(label | examined) (position effect removed), for comparison with served scores.
    relevance_oracle_auc: float
    null_se: float
    positives: int
    examples: int

    @property
    def oracle_share(self) -> float:
        """Share of the oracle's gap over chance that the model closes: (AUC − ½)/(AUC_oracle − ½)."""
        return (self.auc - 0.5) / (self.oracle_auc - 0.5)

    @property
    def z(self) -> float:
        """(AUC − ½) in null standard errors."""
        return (self.auc - 0.5) / self.null_se


def score_heads(data: FeaturizedSimulation, predictions: dict[str, np.ndarray]) -> list[HeadScore]:
    """A HeadScore per binary head (see `binary_heads`) from eval predictions aligned with data.eval_raw."""
    scores = []
    for name in binary_heads(data.config):
        key = data.config.head(name).label
        label = data.eval_labels[key]
        scores.append(HeadScore(
            head=name, auc=auc(predictions[name], label),
            oracle_auc=auc(label_probability(data.truth, key), label),
            relevance_oracle_auc=auc(relevance_probability(data.truth, key), label),
            null_se=null_auc_standard_error(label), positives=int(label.sum()), examples=len(label)))
    return scores


def binary_heads(config: Config) -> list[str]:
    """Names of the config's binary heads whose label the simulator has truth for."""
    return [h.name for h in config.heads if h.type == "binary"
            and h.label in (schema.CLICK, schema.LIKE, schema.DISMISS)]


def predict(model: Callable[..., Any], inputs: dict[str, np.ndarray], batch_size: int = 4096
            ) -> dict[str, np.ndarray]:
    """The model's outputs on transformed features, batch by batch, as numpy."""
    n = len(next(iter(inputs.values())))
    parts = []
    for start in range(0, n, batch_size):
        batch = {k: tf.constant(v[start:start + batch_size]) for k, v in inputs.items()}
        parts.append({k: v.numpy() for k, v in model(batch, training=False).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
