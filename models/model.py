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

from collections.abc import Mapping
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, from_dict
from watchnext.core.contract import SCORE_OUTPUT, SCORE_WEIGHTS_FEATURE
from watchnext.models.heads import labelled, labelled_fraction, ranking_task, serving_prediction
from watchnext.models.layers import (
    CombinedScore,
    FeatureEncoder,
    ShallowTower,
    Tower,
    apply_position_bias,
    device_feature,
    id_input_dim,
    mixing_layer_from_config,
    no_autograph,
)

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

# Output key of the combined ranking score (the config forbids it as a head name).
SCORE_KEY = SCORE_OUTPUT
# Optional input: per-request or per-candidate score weights, [K] or [B, K] in head order.
SCORE_WEIGHTS_KEY = SCORE_WEIGHTS_FEATURE


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
                m.position_embedding_dim, m.shallow_tower_units, m.position_dropout,
                form=m.position_bias_form, name="shallow_tower")
        self.combined_score = CombinedScore.from_heads(config.heads, name="combined_score")
        self.tasks = [ranking_task(h) for h in config.heads]
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
            form = self.config.model.position_bias_form
            outputs = [apply_position_bias(o, bias, form, h.type == "binary") if h.position_bias else o
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
            label, weight = labelled(head, features)
            # AUC/RMSE only at evaluation: updating AUC's histograms on every training step
            # cost ~15% of the step at batch 1024; training logs carry the per-head losses.
            summed = task(labels=label[:, tf.newaxis], predictions=y[:, tf.newaxis],
                          sample_weight=weight[:, tf.newaxis], training=training,
                          compute_metrics=self.metrics_in_training or not training)
            head_loss = summed / tf.maximum(tf.reduce_sum(weight), 1.0)
            if head.presence and head.presence_loss == "batch_mean":
                head_loss *= labelled_fraction(head, features)
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
        gradients = dense_embedding_gradients(tape.gradient(scaled_loss, self.trainable_variables),
                                              self.optimizer, replicas)
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


def dense_embedding_gradients(gradients: list[Any], optimizer: Any, replicas: int) -> list[Any]:
    """The embedding tables' sparse gradients (tf.IndexedSlices) as dense tensors, for Adam on one replica.

    tf_keras' Adam updates every row of a table on every step either way: with a sparse
    gradient it decays m and v of all rows, then scatter-adds the batch's rows, which is the
    dense update m += (g − m)(1 − β1), v += (g² − v)(1 − β2) with g = 0 on rows the batch did not
    touch (duplicate ids are summed first in both). The sparse path only adds a Unique and two
    scatters per table: with the census config's 31 tables that was ~10% of a step at batch 1024.
    Under a distribution strategy the gradients stay sparse, since replicas would all-reduce
    whole tables instead of the batch's rows.
    """
    if replicas != 1 or not isinstance(optimizer, tf_keras.optimizers.Adam):
        return gradients
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients]


def build_model(config: Config, vocab_sizes: Mapping[str, int],
                output_biases: Mapping[str, float] | None = None) -> WatchNextModel:
    """The ranker for `config` with embedding tables sized by Transform's `vocab_sizes` (by vocabulary).

    `output_biases` ({head: starting output bias}, see `heads.label_priors`) start the towers at
    the labels' priors; heads not in it start at 0.
    """
    return WatchNextModel(config, vocab_sizes, output_biases, name="watchnext")


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
    "multiplications_per_example",
]
