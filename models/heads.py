"""Per-head training and serving: each head's loss (a `tfrs.tasks.Ranking`), its label on the
training scale with presence weights, its starting output bias, and its serving-scale prediction.

The head's config (`Head`: type, label_transform, regression_loss, presence, presence_loss)
decides all four; the model (models/model.py) only sums the heads' losses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, Head

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

# expm1 overflows float32 above ~88.7; log1p-scale predictions are clipped below that.
_MAX_LOG1P_PREDICTION = 80.0


def ranking_task(head: Head) -> tfrs.tasks.Ranking:
    # SUM: compute_loss divides by the number of labelled examples itself (presence masks).
    sum_reduction = tf_keras.losses.Reduction.SUM
    if head.type == "binary":
        return tfrs.tasks.Ranking(
            loss=tf_keras.losses.BinaryCrossentropy(from_logits=True, reduction=sum_reduction),
            metrics=[tf_keras.metrics.AUC(from_logits=True, name=f"{head.name}_auc")],
            name=f"{head.name}_task")
    if head.regression_loss == "weighted_logistic":
        # Soft-label cross-entropy: with the label y/(1+y) and weight 1+y (see _labelled) it is
        # y·softplus(-z) + softplus(z), the weighted logistic regression. No metric: the
        # head's loss (<head>_loss) is its training signal, and RMSE on the soft label means nothing.
        return tfrs.tasks.Ranking(
            loss=tf_keras.losses.BinaryCrossentropy(from_logits=True, reduction=sum_reduction),
            name=f"{head.name}_task")
    return tfrs.tasks.Ranking(
        loss=tf_keras.losses.MeanSquaredError(reduction=sum_reduction),
        metrics=[tf_keras.metrics.RootMeanSquaredError(name=f"{head.name}_rmse")],
        name=f"{head.name}_task")


def _label(features: Mapping[str, tf.Tensor], key: str, head: Head) -> tf.Tensor:
    if key not in features:
        raise KeyError(f"the batch has no {key!r}, needed by head {head.name!r} (config heads); "
                       f"compute_loss needs every key in config.label_keys; got {sorted(features)}")
    return features[key]


def _training_label(head: Head, label: tf.Tensor) -> tf.Tensor:
    """The label on the scale the head is trained on, float32 [B]."""
    label = tf.reshape(tf.cast(label, tf.float32), [-1])
    if head.label_transform == "log1p":
        return tf.math.log1p(tf.maximum(label, 0.0))
    return label


def labelled(head: Head, features: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """(training-scale label, weight), float32 [B] each: weight is the presence flag (1 without
    one), and an absent label is set to 0, since it may hold anything (NaN included) and
    0 · NaN would still poison a weighted sum. A weighted_logistic head's label y becomes
    the soft label y / (1 + y) with weight presence · (1 + y)."""
    label = _training_label(head, _label(features, head.label, head))
    weight = (tf.reshape(tf.cast(_label(features, head.presence, head), tf.float32), [-1])
              if head.presence else tf.ones_like(label))
    label = tf.where(weight > 0.0, label, tf.zeros_like(label))
    if head.regression_loss == "weighted_logistic":
        # A negative of weight 1 and a positive of weight y ≥ 0 = one example of weight 1 + y
        # whose soft label is y / (1 + y). Normalizing the loss by Σ weight keeps it O(1)
        # whatever the label's unit (seconds or hours).
        y = tf.maximum(label, 0.0)
        return y / (1.0 + y), weight * (1.0 + y)
    return label, weight


def labelled_fraction(head: Head, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Share of the batch whose `presence` flag is 1 (a float32 scalar)."""
    present = tf.reshape(tf.cast(_label(features, head.presence, head), tf.float32), [-1])
    return tf.reduce_mean(tf.cast(present > 0.0, tf.float32))


def serving_prediction(head: Head, y: tf.Tensor) -> tf.Tensor:
    """A head's raw output → serving scale: sigmoid for binary, label units for regression
    (exp of the logit for a weighted_logistic head)."""
    if head.type == "binary":
        return tf.sigmoid(y)
    if head.regression_loss == "weighted_logistic":
        # The odds exp(z) is E[label] at the loss's optimum; clipped so that it stays finite.
        return tf.exp(tf.minimum(y, _MAX_LOG1P_PREDICTION))
    if head.label_transform == "log1p":
        return tf.math.expm1(tf.clip_by_value(y, 0.0, _MAX_LOG1P_PREDICTION))
    return y


# Positive rates are clipped to [ε, 1 − ε] so a head whose sample has no positive (or no
# negative) starts at a large but finite logit.
_PRIOR_RATE_EPSILON = 1e-4


def label_priors(config: Config, batches: tf.data.Dataset) -> dict[str, float]:
    """{head: the output bias matching its label's prior} over the first
    `training.prior_bias_batches` batches (features with `config.label_keys`).

    Binary heads get the log-odds of the positive rate, regression heads the mean of the
    label on the training scale (after `label_transform`), weighted_logistic heads the log
    of the label's mean (ε if it is 0); all over the examples whose `presence` is 1. A head
    with no labelled example in the sample is left out (bias 0). Empty when
    prior_bias_batches is 0.
    """
    n = config.training.prior_bias_batches
    if n == 0:
        return {}
    sums = {h.name: [0.0, 0.0] for h in config.heads}  # Σ weight·label, Σ weight
    for features in batches.take(n):
        for head in config.heads:
            label, weight = labelled(head, features)
            sums[head.name][0] += float(tf.reduce_sum(weight * label))
            sums[head.name][1] += float(tf.reduce_sum(weight))
    priors = {}
    for head in config.heads:
        total, count = sums[head.name]
        if count <= 0.0:
            continue
        mean = total / count
        if head.regression_loss == "weighted_logistic":
            # Σ w·l = Σ y and Σ w = Σ (1 + y) over the labelled examples: log E[y] is the odds' log.
            priors[head.name] = math.log(max(total / max(count - total, 1.0), _PRIOR_RATE_EPSILON))
            continue
        if head.type == "binary":
            rate = min(max(mean, _PRIOR_RATE_EPSILON), 1.0 - _PRIOR_RATE_EPSILON)
            priors[head.name] = math.log(rate / (1.0 - rate))
        else:
            priors[head.name] = mean
    return priors
