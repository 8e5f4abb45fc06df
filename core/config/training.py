"""`training`: the Trainer's budget, optimizer, distribution and early stopping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watchnext.core.config.checks import check, one_of

DISTRIBUTIONS = ("default", "mirrored", "multi_worker_mirrored")


@dataclass(frozen=True)
class TrainingSection:
    """Trainer settings."""

    # Explicit step budget, overriding `epochs`: exactly this many steps, no early stopping, the
    # last weights exported; 0: derive the budget from `epochs` (models/trainer.py).
    train_steps: int = 0
    # Eval batches per validation and for the final eval metrics; 0: one pass over the eval split.
    eval_steps: int = 0
    # 1024 by measurement: examples/s and eval AUC at equal epochs per batch size are in
    # docs/notes/train.md. When changing it, scale the learning rate with the square root of
    # the batch (0.003 at 256 → 0.006 at 1024; bench/training_speed.learning_rate_for).
    # It is the global batch of one step: under a distribution with N replicas in sync each
    # replica takes batch_size / N of it (models/distribution.py).
    batch_size: int = 1024
    learning_rate: float = 0.006
    seed: int = 42
    # Start from the last blessed model's weights (embeddings remapped by id) when there is one.
    warm_start: bool = True
    # tf.distribute strategy (models/distribution.py): default (one device), mirrored (every
    # local GPU, else every local CPU device) or multi_worker_mirrored (workers from TF_CONFIG).
    distribution: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"
    # Start each tower's output bias at its label's prior (binary: log-odds of the positive
    # rate; regression: mean of the training-scale label), measured on this many training
    # batches before the first step; 0 starts biases at 0. With a zero bias a rare label
    # makes the first steps push every logit down, and when a tower's output weights all
    # start positive they do it by driving every ReLU of the tower negative: the tower dies
    # and the head predicts a constant (seen on Census-Income, shared_bottom, seed 0).
    prior_bias_batches: int = 50
    # Training budget in full passes over the train split, when train_steps is 0: the steps are
    # ceil(train examples / batch_size) × epochs, the examples counted in the Trainer's train
    # files (models/trainer.py, `count_examples`). Early stopping may end training sooner.
    epochs: int = 10
    # Validate on `eval_steps` eval batches every this many steps (and after the last step), so
    # early stopping can act inside an epoch; 0: once per epoch.
    validation_interval_steps: int = 0
    # Stop after this many validations in a row without the weighted eval loss improving by more
    # than early_stopping_min_delta, and restore the best validation's weights; 0: never stop early
    # (the best weights are still restored at the end).
    early_stopping_patience: int = 3
    early_stopping_min_delta: float = 0.0
    # Kubeflow/Vertex only (compile-kubeflow; local runs ignore these): 0 trains inside the
    # Trainer's own pipeline container (the default); N >= 1 makes the compiled Trainer run as a
    # Vertex AI custom job of N replicas of the pipeline's image, on vertex_machine_type machines
    # in vertex_project/vertex_region: pool 0 the chief (the only one that writes the model),
    # pool 1 the N - 1 workers. N > 1 needs distribution multi_worker_mirrored; batch_size stays
    # the global batch, so each of the N replicas takes batch_size / N examples per step
    # (models/distribution.py).
    vertex_workers: int = 0
    vertex_machine_type: str = "n1-standard-8"
    vertex_project: str = ""
    vertex_region: str = ""

    def validate(self, path: str = "training") -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        check(self.train_steps >= 0, f"{path}.train_steps", "must be >= 0 (0: derive from epochs)")
        check(self.eval_steps >= 0, f"{path}.eval_steps", "must be >= 0 (0: the whole eval split)")
        check(self.epochs >= 1, f"{path}.epochs", "must be >= 1")
        check(self.validation_interval_steps >= 0, f"{path}.validation_interval_steps",
              "must be >= 0 (0: once per epoch)")
        check(self.early_stopping_patience >= 0, f"{path}.early_stopping_patience",
              "must be >= 0 (0: no early stopping)")
        check(self.early_stopping_min_delta >= 0, f"{path}.early_stopping_min_delta", "must be >= 0")
        check(self.prior_bias_batches >= 0, f"{path}.prior_bias_batches", "must be >= 0")
        check(self.batch_size >= 1, f"{path}.batch_size", "must be >= 1")
        one_of(self.distribution, DISTRIBUTIONS, f"{path}.distribution")
        check(self.vertex_workers >= 0, f"{path}.vertex_workers", "must be >= 0 (0: no Vertex AI job)")
        if self.vertex_workers:
            for key in ("vertex_project", "vertex_region", "vertex_machine_type"):
                check(bool(getattr(self, key)), f"{path}.{key}", f"is needed when {path}.vertex_workers > 0")
        check(self.vertex_workers <= 1 or self.distribution == "multi_worker_mirrored",
              f"{path}.distribution",
              f"must be multi_worker_mirrored for {path}.vertex_workers {self.vertex_workers} (> 1): "
              "otherwise every replica would train alone")
