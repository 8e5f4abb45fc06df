"""Tests of pipeline/cache_keys.py: each view keeps what its component reads and drops the rest.

A view that keeps too much makes a rerun featurize, search or train again (a cache
miss); one that drops too much makes a changed setting reuse a stale output (a wrong
cache hit). Both directions are checked for every view.
"""

from __future__ import annotations

import dataclasses
import json
import os

from watchnext.core.config import (
    Config,
    ConfigError,
    NumericEmbedding,
    TrainerView,
    TransformView,
    from_dict,
    load_config,
)
from watchnext.pipeline.cache_keys import evaluator_view, trainer_view, transform_view, tuner_view

import pytest

CENSUS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "census_income.yaml")


def _elsewhere(config: Config) -> Config:
    """The same model trained from another log path, served and blessed differently."""
    return config.replace(
        data=config.with_data_path("/other/path/to/the/same/logs").data,
        pipeline=dataclasses.replace(config.pipeline, output_dir="/elsewhere"),
        serving=dataclasses.replace(config.serving, keep_versions=9),
        heads=tuple(dataclasses.replace(h, value_threshold=0.9) for h in config.heads))


def test_transform_view_keeps_only_what_preprocessing_reads():
    config = Config()
    retrained = config.replace(training=dataclasses.replace(config.training, train_steps=7),
                               model=dataclasses.replace(config.model, num_experts=9))
    assert transform_view(config) == transform_view(retrained) == transform_view(_elsewhere(config))
    numeric = config.features.numeric[:-1]
    fewer = config.replace(features=dataclasses.replace(config.features, numeric=numeric))
    assert transform_view(fewer) != transform_view(config)


def test_transform_view_ignores_embedding_widths_but_not_the_quantile_bins():
    config = load_config(CENSUS)
    f = config.features
    embedded = config.replace(features=dataclasses.replace(f, numeric_embeddings=(
        NumericEmbedding("age", "piecewise_linear", buckets=16, embedding_dim=4),)))
    wider = embedded.replace(features=dataclasses.replace(
        embedded.features, ids=tuple(dataclasses.replace(i, embedding_dim=8) for i in f.ids),
        numeric_embeddings=(NumericEmbedding("age", "piecewise_linear", buckets=16, embedding_dim=8,
                                             keep_value=False),)))
    assert transform_view(wider) == transform_view(embedded) != transform_view(config)
    finer = embedded.replace(features=dataclasses.replace(
        embedded.features, numeric_embeddings=(NumericEmbedding("age", "piecewise_linear", buckets=32),)))
    assert transform_view(finer) != transform_view(embedded)
    # What the Trainer reads still sees the widths.
    assert trainer_view(wider) != trainer_view(embedded)


def test_trainer_view_ignores_paths_serving_and_blessing():
    config = Config()
    assert trainer_view(_elsewhere(config)) == trainer_view(config)
    blessing = dataclasses.replace(config.evaluation, confidence=0.99, max_auc_drop=0.05, ndcg_cutoffs=(3,))
    assert trainer_view(config.replace(evaluation=blessing)) == trainer_view(config)  # the Evaluator's
    alarm = dataclasses.replace(config.evaluation, max_polarized_share=0.2)  # read by run_fn's check
    for changed in (config.replace(training=dataclasses.replace(config.training, learning_rate=0.1)),
                    config.replace(training=dataclasses.replace(config.training, train_steps=7)),
                    config.replace(model=dataclasses.replace(config.model, num_experts=9)),
                    config.replace(evaluation=alarm)):
        assert trainer_view(changed) != trainer_view(config)


def test_trainer_view_drops_a_tables_label_derivation():
    table = load_config(CENSUS)
    assert any(h.label_from.column for h in table.heads)
    view = trainer_view(table)
    assert not any(h.label_from.column for h in view.heads)
    assert [h.name for h in view.heads] == [h.name for h in table.heads]
    assert not hasattr(view, "data")  # the CSV path and its split seed are TableExampleGen's
    assert trainer_view(_elsewhere(table)) == view


def test_tuner_view_ignores_what_the_search_does_not_read():
    config = from_dict({"tuning": {"enabled": True}})
    view = tuner_view(config)
    unrelated = _elsewhere(config).replace(
        training=dataclasses.replace(config.training, train_steps=7, eval_steps=3, warm_start=False),
        evaluation=dataclasses.replace(config.evaluation, max_polarized_share=0.2))
    assert tuner_view(unrelated) == view
    # A table's label derivation (done by TableExampleGen) is not the Tuner's either.
    table = load_config(CENSUS)
    assert tuner_view(_elsewhere(table)) == tuner_view(table)
    for changed in ({"tuning": {"enabled": True, "max_trials": 9}}, {"model": {"shared_hidden_units": 8}},
                    {"training": {"batch_size": 32}}, {"training": {"prior_bias_batches": 3}}):
        assert tuner_view(from_dict({"tuning": {"enabled": True}} | changed)) != view, changed


def test_the_views_nest():
    """What the Tuner's key keeps, the Trainer's keeps too; the Transform's heads are in both."""
    config = from_dict({"tuning": {"enabled": True}})
    trainer, tuner = trainer_view(config), tuner_view(config)
    assert (tuner.features, tuner.heads, tuner.model, tuner.tuning) == (
        trainer.features, trainer.heads, trainer.model, trainer.tuning)
    labels = [(h.name, h.label) for h in tuner.heads]
    assert [(h.name, h.label) for h in transform_view(config).heads] == labels


def test_each_view_holds_only_the_sections_its_component_reads():
    """A view is its own type: reading a section it does not hold fails instead of giving a default."""
    config = load_config(CENSUS)
    held = {transform_view: {"features", "heads"},
            trainer_view: {"features", "heads", "model", "training", "tuning", "evaluation"},
            tuner_view: {"features", "heads", "model", "training", "tuning", "evaluation"},
            evaluator_view: {"features", "heads", "evaluation"}}
    for view, sections in held.items():
        v = view(config)
        assert set(json.loads(v.to_json())) == sections, view.__name__
        assert not isinstance(v, Config)
        with pytest.raises(AttributeError):
            v.data  # noqa: B018  (the trap the view removes: run_fn reading the log folder)
        assert type(v).from_json(v.to_json()) == v, view.__name__


def test_a_view_reads_a_whole_configs_json_as_well():
    """In-process callers hand preprocessing_fn or run_fn a whole Config's JSON: validated whole, narrowed."""
    config = load_config(CENSUS)
    assert TrainerView.from_json(config.to_json()) == TrainerView.of(config)
    assert TransformView.from_json(config.to_json()).features == config.features
    with pytest.raises(ConfigError, match=r"<json>: config key data\.sourc: unknown key \(did you mean"):
        TrainerView.from_json(json.dumps({"data": {"sourc": "table"}}))
    with pytest.raises(ConfigError, match=r"<json>: config key training\.batch_size: must be >= 1"):
        TrainerView.from_json(json.dumps({"training": {"batch_size": 0}}))
    with pytest.raises(ConfigError, match=r"model\.position_mode: 'shallow_tower' needs features\.position"):
        TrainerView.from_json(json.dumps({"features": {"position": ""}}))
