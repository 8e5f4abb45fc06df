"""TFMA EvalConfig for the multi-head model, derived from the config: for TFMA deep dives.

The pipeline's Evaluator no longer runs TFMA (components/evaluator: the same metrics,
slices and NDCG computed in numpy from one batched pass, ~100× cheaper, plus a paired
comparison TFMA does not offer). This config stays for an analyst who wants TFMA's own
tools (`tfma.run_model_analysis` in a notebook, its visualizations) on a model the
pipeline produced, and for bench/experiments/bench_evaluator.py, which times the two.

One output per head in `serving_default`; `label_keys` maps each output to its raw
label column, a head with a `presence` column is weighted by it (the rating head is
scored only where a rating exists). Blessing needs, for every head, a value
threshold (when configured) and a change threshold against the last blessed model:
a candidate that is worse than the served model on any head is not pushed.
"""

from __future__ import annotations

import json

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config, Head
from watchnext.core.contract import SCORE_OUTPUT, SERVING_SIGNATURE

import tensorflow_model_analysis as tfma


def _value_threshold(head: Head, bound: str) -> tfma.GenericValueThreshold:
    """The head's absolute bound, or no bound at all: which still fails a NaN metric.

    Always present on purpose: on the first run there is no baseline, TFX drops the
    change thresholds, and a metric left with an empty threshold would make TFMA
    refuse the blessing as "missing thresholds".
    """
    if head.value_threshold > 0:
        return tfma.GenericValueThreshold(**{bound: {"value": head.value_threshold}})
    return tfma.GenericValueThreshold()


def _binary_metrics(head: Head, config: Config) -> list[tfma.MetricConfig]:
    auc_threshold = tfma.MetricThreshold(
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.evaluation.max_auc_drop},
        ),
        value_threshold=_value_threshold(head, "lower_bound"),
    )
    return [
        tfma.MetricConfig(class_name="AUC", per_slice_thresholds=_overall_only(auc_threshold)),
        tfma.MetricConfig(class_name="AUC", config='{"curve": "PR", "name": "auc_pr"}'),
        tfma.MetricConfig(class_name="BinaryCrossentropy", config='{"name": "log_loss"}'),
        tfma.MetricConfig(class_name="Calibration"),
        tfma.MetricConfig(class_name="MeanPrediction"),
        tfma.MetricConfig(class_name="MeanLabel"),
        tfma.MetricConfig(class_name="ExampleCount"),
    ]


def _regression_metrics(head: Head, config: Config) -> list[tfma.MetricConfig]:
    mse_threshold = tfma.MetricThreshold(
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER,
            relative={"value": config.evaluation.max_mse_increase_ratio},
        ),
        value_threshold=_value_threshold(head, "upper_bound"),
    )
    return [
        tfma.MetricConfig(class_name="MeanSquaredError", per_slice_thresholds=_overall_only(mse_threshold)),
        tfma.MetricConfig(class_name="MeanAbsoluteError"),
        tfma.MetricConfig(class_name="MeanPrediction"),
        tfma.MetricConfig(class_name="MeanLabel"),
        tfma.MetricConfig(class_name="ExampleCount"),
    ]


def _overall_only(threshold: tfma.MetricThreshold) -> list[tfma.PerSliceMetricThreshold]:
    """Apply a threshold to the overall slice only (an empty SlicingSpec matches nothing else).

    Slices are diagnostics: a sparse slice (a device with no ratings, a rare position)
    has undefined or noisy metrics and must not veto a model on its own.
    """
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def ranking_gains(config: Config) -> list[str]:
    """Labels used as NDCG gains: those of the engagement heads (e.g. click, watch_time)."""
    gains = [h.label for h in config.heads if h.group == "engagement" and not h.presence]
    return gains or [config.heads[0].label]


def make_eval_config(config: Config) -> tfma.EvalConfig:
    """Per-head metrics, device/position slices (when the data has them) and blessing thresholds."""
    # Slices use the raw columns (device names, positions), so no Transform preprocessing
    # here: its outputs would replace them with vocabulary indices.
    gains = ranking_gains(config)
    model_spec = tfma.ModelSpec(
        signature_name=SERVING_SIGNATURE,
        # `score` has no label of its own; TFMA wants one per output, and the query
        # metrics below read their gains from the gain columns, not from this label.
        label_keys={**{h.name: h.label for h in config.heads}, SCORE_OUTPUT: gains[0]},
        example_weight_keys={h.name: h.presence for h in config.heads if h.presence},
    )
    metrics_specs = []
    for h in config.heads:
        metrics = (_binary_metrics if h.type == "binary" else _regression_metrics)(h, config)
        metrics_specs.append(tfma.MetricsSpec(output_names=[h.name], metrics=metrics))
    # Ranking quality of the combined score within each request (slate): NDCG@k with
    # each engagement label as the gain. Data without requests (a table) has no slates.
    if config.features.request_id:
        metrics_specs.append(tfma.MetricsSpec(
            output_names=[SCORE_OUTPUT], query_key=config.features.request_id,
            metrics=[tfma.MetricConfig(class_name="NDCG", config=json.dumps({
                "gain_key": gain, "top_k_list": list(config.evaluation.ndcg_cutoffs),
                "name": f"ndcg_{gain}"})) for gain in gains]))
    f = config.features
    slicing = [tfma.SlicingSpec()]
    slicing += [tfma.SlicingSpec(feature_keys=[name]) for name in (f.device, f.position) if name]
    slicing += [tfma.SlicingSpec(feature_keys=[name]) for name in f.slices]
    return tfma.EvalConfig(model_specs=[model_spec], metrics_specs=metrics_specs, slicing_specs=slicing)
