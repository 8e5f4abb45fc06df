"""What each costly component is keyed on: the part of the config it reads, nothing more.

TFX reuses a component's earlier output when its inputs and exec properties are the
same. watchnext hands Transform, the Tuner, the Trainer and the Evaluator their part of the
behaviour through one config JSON, so whatever a component does not read has to be
left out of it; otherwise a rerun with, say, another `--logs` path to the same files or
another blessing threshold would featurize, search or train again instead of reusing what
it already has. Each view is its own type (core/config/views.py) holding only the sections
its component reads, so that `run_fn` cannot read `config.data` and get a silent default;
within those sections, the fields the component does not read are reset to their defaults
here. The Tuner's view is derived from the Trainer's (its trials build the same model from
the same examples), so the two cannot drift apart; Transform's reads far less and is built
on its own.
"""

from __future__ import annotations

import dataclasses

from watchnext.core.config import (
    Config,
    EvaluationSection,
    EvaluatorView,
    Head,
    IdFeature,
    LabelFrom,
    NumericEmbedding,
    TrainerView,
    TrainingSection,
    TransformView,
)


def transform_view(config: Config) -> TransformView:
    """What preprocessing_fn reads: `features` (less the embedding widths) and the heads' label
    and presence columns; the heads' weights would only make the Transform cache miss.
    """
    heads = tuple(Head(h.name, h.type, h.label, presence=h.presence) for h in config.heads)
    # Embedding widths (and whether an encoded numeric feature keeps its value) shape the
    # model, not the featurization: trying another width must not featurize again.
    f = config.features
    features = dataclasses.replace(
        f, ids=tuple(dataclasses.replace(i, embedding_dim=IdFeature.embedding_dim) for i in f.ids),
        numeric_embeddings=tuple(dataclasses.replace(e, embedding_dim=NumericEmbedding.embedding_dim,
                                                     keep_value=NumericEmbedding.keep_value)
                                 for e in f.numeric_embeddings))
    return TransformView(features=features, heads=heads)


def trainer_view(config: Config) -> TrainerView:
    """What the Trainer reads: its cache key.

    run_fn reads features, heads, model, training, tuning (to apply the Tuner's values)
    and, of the evaluation section, only the gate-polarization thresholds of its utilization
    check. The log folder, the output and serving folders, data validation and the blessing
    settings (thresholds, confidence, slices, NDCG cut-offs) would only make the Trainer
    miss its cache, so a rerun of an interrupted run (or a
    run with a new `--logs` path to the same files, or a new `serving.keep_versions`)
    would train again instead of reusing the model it already has. The heads' `label_from`
    goes too: a table's labels are derived by TableExampleGen, long before the Trainer.
    """
    heads = tuple(dataclasses.replace(h, value_threshold=Head.value_threshold, label_from=LabelFrom())
                  for h in config.heads)
    e = config.evaluation
    evaluation = EvaluationSection(polarized_gate_weight=e.polarized_gate_weight,
                                   max_polarized_share=e.max_polarized_share)
    return TrainerView(features=config.features, heads=heads, model=config.model, training=config.training,
                       tuning=config.tuning, evaluation=evaluation)


def tuner_view(config: Config) -> TrainerView:
    """The Trainer's view, less what only the final training reads: the Tuner's cache key.

    A search is costly, so it reruns only when something its trials read changes:
    features, heads, model, tuning and the training settings a trial uses (batch size,
    seed, learning rate, prior-bias batches, distribution). The Trainer's budget (steps,
    epochs, validation interval, early stopping) and warm start (trials use the tuning
    section's steps and start cold) and the utilization alarm's thresholds (checked once,
    on the final model) are reset too.
    """
    view = trainer_view(config)
    t, default = view.training, TrainingSection()
    training = dataclasses.replace(t, train_steps=default.train_steps, eval_steps=default.eval_steps,
                                   warm_start=default.warm_start, epochs=default.epochs,
                                   validation_interval_steps=default.validation_interval_steps,
                                   early_stopping_patience=default.early_stopping_patience,
                                   early_stopping_min_delta=default.early_stopping_min_delta)
    return view.replace(training=training, evaluation=EvaluationSection())


def evaluator_view(config: Config) -> EvaluatorView:
    """What the Evaluator reads: its exec property.

    The Evaluator (components/evaluator) reads the features (slicing columns, request id),
    the heads' names, types, labels, presence, group (the NDCG gains) and floors, and the
    evaluation section. Model and training settings would only make it miss its cache; the
    model it judges is an input artifact already.
    """
    heads = tuple(Head(h.name, h.type, h.label, group=h.group, presence=h.presence,
                       value_threshold=h.value_threshold) for h in config.heads)
    return EvaluatorView(features=config.features, heads=heads, evaluation=config.evaluation)
