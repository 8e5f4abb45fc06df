"""The TFMA EvalConfig derived from the config: one spec per head, thresholds on the overall slice."""

from __future__ import annotations

import json

from watchnext.core.config import Config
from watchnext.core.contract import SCORE_OUTPUT
from watchnext.pipeline.eval_config import make_eval_config

import tensorflow_model_analysis as tfma

CONFIG = Config()


def _spec(eval_config, output):
    (spec,) = [s for s in eval_config.metrics_specs if list(s.output_names) == [output]]
    return spec


def test_every_head_is_an_output_with_its_label_and_presence_weight():
    ec = make_eval_config(CONFIG)
    (model,) = ec.model_specs
    assert dict(model.label_keys) == {**{h.name: h.label for h in CONFIG.heads}, SCORE_OUTPUT: "click"}
    assert dict(model.example_weight_keys) == {"rating": "rating_present"}


def test_blessing_thresholds_sit_on_the_overall_slice_of_the_main_metric():
    ec = make_eval_config(CONFIG)
    for head in CONFIG.heads:
        spec = _spec(ec, head.name)
        gated = [m for m in spec.metrics if m.per_slice_thresholds]
        assert [m.class_name for m in gated] == (["AUC"] if head.type == "binary" else ["MeanSquaredError"])
        (per_slice,) = gated[0].per_slice_thresholds
        assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]
        threshold = per_slice.threshold
        assert threshold.HasField("change_threshold") and threshold.HasField("value_threshold")
        if head.type == "binary" and head.value_threshold:
            assert threshold.value_threshold.lower_bound.value == head.value_threshold


def test_ndcg_of_the_score_per_request():
    spec = _spec(make_eval_config(CONFIG), SCORE_OUTPUT)
    assert spec.query_key == CONFIG.features.request_id
    gains = sorted(json.loads(m.config)["gain_key"] for m in spec.metrics)
    assert gains == ["click", "watch_time"]


def test_slices_by_device_and_position():
    keys = [list(s.feature_keys) for s in make_eval_config(CONFIG).slicing_specs]
    assert keys == [[], ["device"], ["position"]]


def test_a_table_without_requests_or_positions_gets_no_ndcg_and_only_the_overall_slice():
    import os

    from watchnext.core.config import load_config

    table = load_config(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "census_income.yaml"))
    ec = make_eval_config(table)
    assert [list(s.output_names) for s in ec.metrics_specs] == [["income"], ["never_married"]]
    assert [list(s.feature_keys) for s in ec.slicing_specs] == [[]]
    assert dict(ec.model_specs[0].label_keys)["income"] == "income"  # the ExampleGen's derived column
