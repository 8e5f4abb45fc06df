"""create_pipeline's shape: components in data-flow order, the push gated, Transform's cache key."""

from __future__ import annotations

import dataclasses
import json
import os

from watchnext.components.data_gate import DRIFT_SPLIT_PAIRS
from watchnext.core.config import Config, ConfigError, TrainerView, TransformView, from_dict, load_config
from watchnext.core.contract import CONFIG_KEY
from watchnext.pipeline.cache_keys import trainer_view, transform_view, tuner_view
from watchnext.pipeline.pipeline import CODE_VERSION_KEY, code_version, create_pipeline

import pytest
import tensorflow_data_validation as tfdv


def _build(config: Config, tmp_path, **kwargs):
    return create_pipeline(config, logs_dir=str(tmp_path / "logs"), pipeline_root=str(tmp_path / "root"),
                           **kwargs)


def test_components_in_data_flow_order(tmp_path):
    ids = [c.id for c in _build(Config(), tmp_path).components]  # TFX sorts them topologically
    flow = ["LogExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer", "Evaluator", "Pusher"]
    validation = ["ExampleValidator", "previous_span", "previous_span_statistics", "DistributionValidator",
                  "DataGate"]
    assert sorted(ids) == sorted([*flow, *validation, "span_window", "served_model"])
    assert [i for i in ids if i in flow] == flow
    assert ids.index("served_model") < ids.index("Trainer")
    # Both validators feed the gate, and the gate runs before Transform.
    assert ids.index("ExampleValidator") < ids.index("DataGate") < ids.index("Transform")
    assert ids.index("DistributionValidator") < ids.index("DataGate")


def test_trainer_and_evaluator_start_from_the_served_model(tmp_path):
    from watchnext.pipeline.served_model import LatestPushedModelStrategy

    components = {c.id: c for c in _build(Config(), tmp_path).components}
    assert components["served_model"].exec_properties["resolver_class"] is LatestPushedModelStrategy
    assert components["Trainer"].inputs["base_model"].producer_component_id == "served_model"
    assert components["Evaluator"].inputs["baseline_model"].producer_component_id == "served_model"
    # Kubeflow takes built-in strategies only: the latest blessed model stands in there.
    kubeflow = {c.id: c for c in _build(Config(), tmp_path, custom_resolvers=False).components}
    assert "served_model" not in kubeflow
    assert kubeflow["Evaluator"].inputs["baseline_model"].producer_component_id == "latest_blessed_model"


def test_data_gate_is_transforms_upstream_node(tmp_path):
    components = {c.id: c for c in _build(Config(), tmp_path).components}
    assert "DataGate" in {n.id for n in components["Transform"].upstream_nodes}
    assert components["DataGate"].exec_properties["fail_on_anomalies"] is True
    gate_inputs = components["DataGate"].inputs
    assert gate_inputs["drift_anomalies"].producer_component_id == "DistributionValidator"
    assert components["previous_span_statistics"].inputs["examples"].producer_component_id == "previous_span"


def test_the_drift_baseline_is_yesterdays_statistics_reused_or_computed(tmp_path):
    """Issue 15 §3: the previous-span resolver hands on yesterday's statistics from the main
    StatisticsGen when they exist (else yesterday's examples, described by its own StatisticsGen);
    the DistributionValidator compares with whichever of the two is there."""
    from tfx.types.channel import UnionChannel

    components = {c.id: c for c in _build(Config(), tmp_path).components}
    previous = components["previous_span"]
    assert {k: c.producer_component_id for k, c in previous.raw_inputs.items()} == {
        "examples": "LogExampleGen", "statistics": "StatisticsGen"}
    assert previous._config == {"baseline_splits": [baseline for _, baseline in DRIFT_SPLIT_PAIRS]}
    baseline = components["DistributionValidator"].inputs["baseline_statistics"]
    assert isinstance(baseline, UnionChannel) and baseline.is_optional
    assert [(c.producer_component_id, c.output_key) for c in baseline.channels] == [
        ("previous_span", "statistics"), ("previous_span_statistics", "statistics")]


def test_kubeflow_variant_gates_on_the_schema_check_only(tmp_path):
    components = {c.id: c for c in _build(Config(), tmp_path, custom_resolvers=False).components}
    assert "DataGate" in components and "DistributionValidator" not in components
    assert "drift_anomalies" not in components["DataGate"].inputs


def test_kubeflow_variant_has_no_span_window(tmp_path):
    ids = [c.id for c in _build(Config(), tmp_path, custom_resolvers=False).components]
    assert "span_window" not in ids and "Transform" in ids


def test_costly_components_are_keyed_on_their_views(tmp_path):
    """Transform, Tuner and Trainer get their cache-key views (pipeline/cache_keys.py) and the code hash."""
    config = from_dict({"tuning": {"enabled": True}})
    components = {c.id: c for c in _build(config, tmp_path).components}
    views = {"Transform": transform_view, "Tuner": tuner_view, "Trainer": trainer_view}
    for component_id, view in views.items():
        custom_config = json.loads(components[component_id].exec_properties["custom_config"])
        assert type(view(config)).from_json(custom_config[CONFIG_KEY]) == view(config), component_id
        assert custom_config[CODE_VERSION_KEY] == code_version()
    # A table's config (labels derived by TableExampleGen) is a valid Trainer config as well.
    table = load_config(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "census_income.yaml"))
    (trainer,) = [c for c in _build(table, tmp_path).components if c.id == "Trainer"]
    trained = TrainerView.from_json(json.loads(trainer.exec_properties["custom_config"])[CONFIG_KEY])
    assert trained == trainer_view(table)


def test_statistics_sample_rate_reaches_both_statistics_gens(tmp_path):
    def stats_options(config: Config) -> dict[str, object | None]:
        components = {c.id: c for c in _build(config, tmp_path).components}
        return {i: components[i].exec_properties.get("stats_options_json")
                for i in ("StatisticsGen", "previous_span_statistics")}

    # The default reads every example, with TFX's default options (as before the key existed).
    assert stats_options(Config()) == {"StatisticsGen": None, "previous_span_statistics": None}
    sampled = stats_options(from_dict({"validation": {"statistics_sample_rate": 0.1}}))
    for component_id, options in sampled.items():  # read back as StatisticsGen's executor reads it
        assert tfdv.StatsOptions.from_json(options).sample_rate == 0.1, component_id
    with pytest.raises(ConfigError, match=r"validation\.statistics_sample_rate"):
        from_dict({"validation": {"statistics_sample_rate": 0.0}})


def test_transform_computes_no_statistics_unless_asked(tmp_path):
    def transform(config: Config) -> object:
        return {c.id: c for c in _build(config, tmp_path).components}["Transform"]

    # Off by default: StatisticsGen already describes the span, and Transform's two TFDV passes
    # (raw and transformed, unsampled) were a full extra read of the day each.
    default = transform(Config())
    assert default.exec_properties["disable_statistics"] == 1
    assert "post_transform_stats" not in default.outputs
    asked = transform(from_dict({"validation": {"transform_statistics": True}}))
    assert asked.exec_properties["disable_statistics"] == 0
    assert {"pre_transform_stats", "post_transform_stats"} <= set(asked.outputs)


def test_a_table_source_reads_csv_rows_without_a_span_window(tmp_path):
    config = load_config(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "census_income.yaml"))
    table = tmp_path / "census-income.test.gz"
    components = {c.id: c for c in create_pipeline(config, logs_dir=str(table),
                                                   pipeline_root=str(tmp_path / "root")).components}
    assert "TableExampleGen" in components and "LogExampleGen" not in components
    assert "span_window" not in components
    assert components["TableExampleGen"].exec_properties["input_base"] == str(tmp_path)
    # Transform's view of a table (no position feature) is valid, and holds no model section.
    transform_config = json.loads(components["Transform"].exec_properties["custom_config"])[CONFIG_KEY]
    transform = TransformView.from_json(transform_config)
    assert transform.features.position == "" and not hasattr(transform, "model")



def test_the_window_and_yesterday_are_chosen_across_runs(tmp_path):
    """TFX scopes ExampleGen's channel to one run; the resolvers look in every run (pipeline/spans.py)."""
    from watchnext.pipeline.spans import PreviousSpanStrategy, RollingWindowStrategy

    config = Config()
    config = config.replace(data=dataclasses.replace(config.data, window_spans=3))
    components = {c.id: c for c in _build(config, tmp_path).components}
    window, previous = components["span_window"], components["previous_span"]
    assert window._strategy_class is RollingWindowStrategy and window._config == {"num_spans": 3}
    assert previous._strategy_class is PreviousSpanStrategy
    assert components["Transform"].inputs["examples"].producer_component_id == "span_window"
