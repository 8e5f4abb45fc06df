"""The Watch-Next ranker (Zhao et al., RecSys 2019) as a `tfrs.Model` that only assembles layers.

    features ─ FeatureEncoder ─ shared hidden layer ─ mixing layer ─┬─ Tower_1 ─(+ b)─ logit_1
                                                                    ├─ ...
                                                                    └─ Tower_K ─(+ b)─ logit_K
    position, device ─ ShallowTower ─ b   (added to heads with position_bias; 0 at serving)

The mixing layer (mmoe, omoe, shared_bottom, cgc, ple, single_task) is the only part that
changes with `config.model.architecture`; the encoder, towers, shallow tower, losses and
combined score are the same for all, so architectures compare like for like.

Inputs are the transformed features of the lead's preprocessing_fn (see the README's
"Transformed features" contract): id features as int64 [B] (or [B, 1]), multivalent ids
as int64 [B, L] padded with -1, numeric features as float32 [B], position as int64 [B]
with -1 for missing (the key is absent at serving), and, in training/eval batches, the
labels and presence keys of `config.label_keys`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.models.features import SCORE_WEIGHTS_FEATURE
from watchnext.models.layers import (
    CombinedScore,
    FeatureEncoder,
    ShallowTower,
    Tower,
    device_feature,
    id_input_dim,
    mixing_layer_from_config,
    no_autograph,
)
from watchnext.pipeline.configs import Config, Head, from_dict

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

# Output key of the combined ranking score (the config forbids it as a head name).
SCORE_KEY = "score"
# Optional input: per-request or per-candidate score weights, [K] or [B, K] in head order.
SCORE_WEIGHTS_KEY = SCORE_WEIGHTS_FEATURE
# expm1 overflows float32 above ~88.7; log1p-scale predictions are clipped below that.
_MAX_LOG1P_PREDICTION = 80.0


class WatchNextModel(tfrs.Model):
    """FeatureEncoder → shared hidden layer → mixing layer → one Tower per head (+ shallow-tower bias).

    Losses: one `tfrs.tasks.Ranking` per head; binary heads use sigmoid cross-entropy on
    the logit (AUC metric, at evaluation only), regression heads squared error on the label after
    `label_transform` (RMSE metric, on that scale) or, with `regression_loss:
    weighted_logistic`, Covington et al.'s weighted logistic regression (exp(logit) = E[label]).
    A head with a `presence` key counts only the examples whose presence is 1 (a missing
    rating is not a rating of 0), averaged over the batch (`presence_loss: batch_mean`) or
    over those examples (`labelled_mean`). Total loss L = Σ_k loss_weight_k · L_k.

    `call` returns serving-scale predictions, one per head (a probability, or a value in
    label units), and the combined score. With the position key absent (serving) the
    shallow tower is skipped: its bias would be exactly 0. When position is present
    (training/eval batches) its bias is included in the position-biased heads' outputs.
    """

    # AUC/RMSE are updated at evaluation only; benchmarks/training_speed.py sets this on a model
    # to measure what updating them on every training step costs.
    metrics_in_training = False

    def __init__(self, config: Config, vocab_sizes: Mapping[str, int],
                 output_biases: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.vocab_sizes = {k: int(v) for k, v in vocab_sizes.items()}
        m = config.model
        self.encoder = FeatureEncoder(config, self.vocab_sizes, name="feature_encoder")
        self.shared_hidden = tf_keras.layers.Dense(m.shared_hidden_units, activation="relu",
                                                   name="shared_hidden")
        self.mixing = mixing_layer_from_config(config)
        biases = output_biases or {}
        self.towers = [Tower(m.tower_units, output_bias=biases.get(h.name, 0.0), name=f"tower_{h.name}")
                       for h in config.heads]
        self.shallow_tower = None
        if m.position_mode == "shallow_tower":
            self.shallow_tower = ShallowTower(
                config.features.max_position, id_input_dim(device_feature(config), self.vocab_sizes),
                m.position_embedding_dim, m.shallow_tower_units, m.position_dropout, name="shallow_tower")
        self.combined_score = CombinedScore.from_heads(config.heads, name="combined_score")
        self.tasks = [_ranking_task(h) for h in config.heads]
        # Per-head loss averages, so training logs show which objective moves.
        self.head_loss_metrics = [tf_keras.metrics.Mean(name=f"{h.name}_loss") for h in config.heads]

    # -- forward -------------------------------------------------------------
    @no_autograph
    def logits(self, features: Mapping[str, tf.Tensor], training: Any = None
               ) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        """Per-head logits (binary) or transformed-scale values (regression), [B] each, and the gates."""
        x = self.encoder(features, training=training)
        task_inputs, gates = self.mixing(self.shared_hidden(x), training=training)
        outputs = [tower(t) for tower, t in zip(self.towers, task_inputs, strict=True)]
        bias = self._position_bias(features, training)
        if bias is not None:
            outputs = [o + bias if h.position_bias else o
                       for h, o in zip(self.config.heads, outputs, strict=True)]
        return outputs, gates

    def _position_bias(self, features: Mapping[str, tf.Tensor], training: Any) -> tf.Tensor | None:
        """The shallow tower's bias [B], or None when there is none to add."""
        if self.shallow_tower is None:
            return None
        if self.config.features.position not in features:
            # Serving: the bias is 0, so skip the tower, but make sure its variables exist
            # (a model first called without position must not grow variables later).
            if not self.shallow_tower.built:
                self.shallow_tower(-tf.ones([1], tf.int64), tf.zeros([1], tf.int64), training=False)
            return None
        return self.shallow_tower(features[self.config.features.position],
                                  features[self.config.features.device], training=training)

    @no_autograph
    def call(self, features: Mapping[str, tf.Tensor], training: Any = False) -> dict[str, tf.Tensor]:
        """{head name: serving-scale prediction [B], "score": combined score [B]}.

        Binary heads give sigmoid(logit); regression heads give the value in label units
        (expm1 of the prediction clipped to [0, 80] when label_transform is log1p, so the
        value is ≥ 0 and finite). An optional
        features["score_weights"] ([K] or [B, K], head order) overrides the score weights.
        """
        logits, _ = self.logits(features, training=training)
        out = {h.name: serving_prediction(h, y) for h, y in zip(self.config.heads, logits, strict=True)}
        out[SCORE_KEY] = self.combined_score([out[h.name] for h in self.config.heads],
                                             features.get(SCORE_WEIGHTS_KEY))
        return out

    @no_autograph
    def gate_weights(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """{head name: [B, n] weights of the gate the head's tower reads}, at inference.

        n is the number of experts that gate mixes (PLE: the top level's); shared_bottom and
        single_task report a constant [B, 1] of ones (each head reads exactly one MLP).
        """
        return self.logits(features, training=False)[1]

    # -- training ------------------------------------------------------------
    @no_autograph
    def compute_loss(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """L = Σ_k loss_weight_k · L_k on a batch holding the features and `config.label_keys`."""
        logits, _ = self.logits(features, training=training)
        total = tf.constant(0.0)
        for head, task, metric, y in zip(self.config.heads, self.tasks, self.head_loss_metrics, logits,
                                         strict=True):
            label, weight = _labelled(head, features)
            # AUC/RMSE only at evaluation: updating AUC's histograms on every training step
            # cost ~15% of the step at batch 1024; training logs carry the per-head losses.
            summed = task(labels=label[:, tf.newaxis], predictions=y[:, tf.newaxis],
                          sample_weight=weight[:, tf.newaxis], training=training,
                          compute_metrics=self.metrics_in_training or not training)
            head_loss = summed / tf.maximum(tf.reduce_sum(weight), 1.0)
            if head.presence and head.presence_loss == "batch_mean":
                head_loss *= _labelled_fraction(head, features)
            metric.update_state(head_loss)
            total += head.loss_weight * head_loss
        return total

    # Keras wraps these in AutoGraph, which would re-parse tfrs', Keras' metrics' and the
    # optimizer's source on every first trace (~10 s on 2 cores); none of it branches on
    # tensor values, so it runs as plain graph-building Python.
    @no_autograph
    def train_step(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """tfrs.Model's step, with the loss divided by the number of replicas.

        Under a MirroredStrategy each replica's gradients are summed across replicas;
        tfrs.Model does not scale its loss for that, which made every update N times the
        one-device update. Dividing inside the tape restores it (1.0 with one replica).
        Logs the loss and each head's loss; AUC/RMSE are computed at evaluation only.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = tf.reduce_sum([tf.reduce_sum(x) for x in self.losses])
            total_loss = loss + regularization_loss
            scaled_loss = total_loss / replicas
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        # The ranking tasks' metrics are not updated in training (compute_loss): log only the losses.
        metrics = {m.name: m.result() for m in (self.metrics if self.metrics_in_training
                                                else self.head_loss_metrics)}
        metrics.update(loss=loss, regularization_loss=regularization_loss, total_loss=total_loss)
        return metrics

    @no_autograph
    def test_step(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return super().test_step(inputs)

    # -- serialization -------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "vocab_sizes": dict(self.vocab_sizes)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> WatchNextModel:
        return cls(from_dict(cfg["config"], source="WatchNextModel.get_config"), cfg["vocab_sizes"])


def _ranking_task(head: Head) -> tfrs.tasks.Ranking:
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


def _labelled(head: Head, features: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
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


def _labelled_fraction(head: Head, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
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


def build_model(config: Config, vocab_sizes: Mapping[str, int],
                output_biases: Mapping[str, float] | None = None) -> WatchNextModel:
    """The ranker for `config` with embedding tables sized by Transform's `vocab_sizes` (by vocabulary).

    `output_biases` ({head: starting output bias}, see `label_priors`) start the towers at
    the labels' priors; heads not in it start at 0.
    """
    return WatchNextModel(config, vocab_sizes, output_biases, name="watchnext")


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
            label, weight = _labelled(head, features)
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


def multiplications_per_example(config: Config, vocab_sizes: Mapping[str, int]) -> int:
    """Multiply-adds the served model spends per candidate (cf. the paper's Table 2).

    Counts every dense layer (d_in · d_out), every gate (d_in · n) and every gate mixture
    (n · d_expert). Embedding lookups, mean pooling, biases, activations and the combined
    score count 0; the shallow tower counts 0 because serving skips it (no position).
    """
    model = build_model(config, vocab_sizes)
    m = config.model
    d = model.encoder.output_dim
    total = d * m.shared_hidden_units
    total += model.mixing.multiplications(m.shared_hidden_units)
    tower_input = model.mixing.output_dim(m.shared_hidden_units)
    total += sum(t.multiplications(tower_input) for t in model.towers)
    return total


__all__ = [
    "SCORE_KEY",
    "SCORE_WEIGHTS_KEY",
    "WatchNextModel",
    "build_model",
    "label_priors",
    "multiplications_per_example",
    "serving_prediction",
]
