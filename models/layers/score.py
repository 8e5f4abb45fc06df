"""`CombinedScore`: the product of per-head utilities that ranks candidates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import SCORE_FORMS, Head
from watchnext.models.layers.tensors import as_batch_vector, no_autograph

import tensorflow as tf
import tf_keras


class CombinedScore(tf_keras.layers.Layer):
    """The ranking score: s = Π_k f_k(ŷ_k)^{w_k}, computed as exp(Σ_k w_k · log f_k(ŷ_k)).

    f_k depends on the head's `score_form`:
        identity:   f = max(ŷ, ε)                  (a probability, or a positive value)
        complement: f = max(1 - ŷ, ε)              (a bad event such as dismiss)
        log1p:      f = log(1 + max(ŷ, 0)) + ε     (a heavy-tailed value such as watch time)
    The log space keeps a product of small probabilities from underflowing and turns
    the exponents into a weighted sum; ε keeps log finite when a prediction hits 0.
    Weights default to each head's `score_weight` and can be overridden per call by a
    [K] or [B, K] tensor (K heads, in config order), e.g. to tune them online.
    """

    def __init__(self, score_forms: Sequence[str], score_weights: Sequence[float], epsilon: float = 1e-6,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(score_forms) != len(score_weights):
            raise ValueError(f"CombinedScore got {len(score_forms)} score_forms but "
                             f"{len(score_weights)} score_weights")
        for form in score_forms:
            if form not in SCORE_FORMS:
                raise ValueError(f"CombinedScore score_form {form!r} is not one of {SCORE_FORMS}")
        self.score_forms = tuple(score_forms)
        self.score_weights = tuple(float(w) for w in score_weights)
        self.epsilon = float(epsilon)

    @classmethod
    def from_heads(cls, heads: Sequence[Head], **kwargs: Any) -> CombinedScore:
        """One factor per head: f_k from `head.score_form`, w_k = `head.score_weight`."""
        return cls([h.score_form for h in heads], [h.score_weight for h in heads], **kwargs)

    def log_utilities(self, predictions: Sequence[tf.Tensor]) -> tf.Tensor:
        """log f_k(ŷ_k) for each head, [B, K]."""
        if len(predictions) != len(self.score_forms):
            raise ValueError(f"CombinedScore expects {len(self.score_forms)} predictions (one per head), "
                             f"got {len(predictions)}")
        eps = self.epsilon
        columns = []
        for form, pred in zip(self.score_forms, predictions, strict=True):
            pred = tf.cast(as_batch_vector(pred), tf.float32)
            if form == "identity":
                f = tf.maximum(pred, eps)
            elif form == "complement":
                f = tf.maximum(1.0 - pred, eps)
            else:  # log1p
                f = tf.math.log1p(tf.maximum(pred, 0.0)) + eps
            columns.append(tf.math.log(f))
        return tf.stack(columns, axis=-1)

    @no_autograph
    def call(self, predictions: Sequence[tf.Tensor], weights: tf.Tensor | None = None) -> tf.Tensor:
        """`predictions`: K serving-scale [B] tensors (config head order). Returns s, [B]."""
        log_f = self.log_utilities(predictions)
        if weights is None:
            w = tf.constant(self.score_weights, tf.float32)[tf.newaxis, :]
        else:
            w = tf.cast(tf.convert_to_tensor(weights), tf.float32)
            if w.shape.rank == 1:
                w = w[tf.newaxis, :]
            elif w.shape.rank != 2:
                raise ValueError(f"score weights must be [K] or [B, K], got shape {w.shape}")
            if w.shape[-1] is not None and w.shape[-1] != len(self.score_forms):
                raise ValueError(f"score weights have {w.shape[-1]} columns, the model has "
                                 f"{len(self.score_forms)} heads")
        return tf.exp(tf.reduce_sum(w * log_f, axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "score_forms": list(self.score_forms),
                "score_weights": list(self.score_weights), "epsilon": self.epsilon}
