"""create_pipeline's shape: components in data-flow order, the push gated, Transform's cache key."""

from __future__ import annotations

import dataclasses
import json

from watchnext.models.preprocessing import CONFIG_KEY
from watchnext.pipeline.configs import Config
from watchnext.pipeline.pipeline import create_pipeline, transform_view


def _build(config: Config, tmp_path, **kwargs):
    return create_pipeline(config, logs_dir=str(tmp_path / "logs"), pipeline_root=str(tmp_path / "root"),
                           **kwargs)


def test_components_in_data_flow_order(tmp_path):
    ids = [c.id for c in _build(Config(), tmp_path).components]  # TFX sorts them topologically
    flow = ["LogExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer", "Evaluator", "Pusher"]
    assert sorted(ids) == sorted([*flow, "span_window", "ExampleValidator", "latest_blessed_model"])
    assert [i for i in ids if i in flow] == flow
    assert ids.index("latest_blessed_model") < ids.index("Trainer")


def test_kubeflow_variant_has_no_span_window(tmp_path):
    ids = [c.id for c in _build(Config(), tmp_path, span_window=False).components]
    assert "span_window" not in ids and "Transform" in ids


def test_transform_cache_key_ignores_what_preprocessing_does_not_read(tmp_path):
    config = Config()
    retrained = config.replace(training=dataclasses.replace(config.training, train_steps=7),
                               model=dataclasses.replace(config.model, num_experts=9))
    assert transform_view(config) == transform_view(retrained)

    def transform_config(cfg: Config) -> dict:
        (transform,) = [c for c in _build(cfg, tmp_path).components if c.id == "Transform"]
        return json.loads(transform.exec_properties["custom_config"])

    assert transform_config(config) == transform_config(retrained)
    more_history = config.replace(features=dataclasses.replace(
        config.features, numeric=(*config.features.numeric[:-1],)))
    assert transform_config(more_history)[CONFIG_KEY] != transform_config(config)[CONFIG_KEY]
