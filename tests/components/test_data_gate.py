"""DataGate: which features are compared with the previous span, and how anomalies stop a run."""

from __future__ import annotations

import dataclasses
import os

from watchnext.components.data_gate import (
    ANOMALIES_FILE,
    DataValidationFailed,
    check,
    drift_config,
    drift_features,
    read_anomalies,
)
from watchnext.core.config import Config, ConfigError, from_dict

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2


def test_default_drift_features_are_labels_numeric_inputs_and_device():
    config = Config()
    pairs = {name: (comparator, threshold) for name, comparator, threshold in drift_features(config)}
    v = config.validation
    for head in config.heads:
        threshold = v.max_label_drift if head.type == "binary" else v.max_feature_drift
        assert pairs[head.label] == ("jensen_shannon_divergence", threshold)
        if head.presence:
            assert pairs[head.presence] == ("jensen_shannon_divergence", v.max_label_drift)
    for name in config.features.numeric:
        assert pairs[name] == ("jensen_shannon_divergence", v.max_feature_drift)
    assert pairs[config.features.device] == ("infinity_norm", v.max_categorical_drift)
    assert v.max_label_drift < v.max_feature_drift  # label rates are held tighter
    assert "user_id" not in pairs and "candidate_video_id" not in pairs  # ids churn daily


def test_explicit_drift_features_and_thresholds_reach_the_validator_config():
    config = from_dict({"validation": {"drift_features": ["click", "country"],
                                       "categorical_drift_features": ["country"],
                                       "max_label_drift": 0.05, "max_categorical_drift": 0.2,
                                       "min_examples_fraction": 0.5, "max_examples_fraction": 2.0}})
    dataset = drift_config(config).default_slice_config
    by_name = {f.path.step[0]: f.distribution_comparator for f in dataset.feature}
    assert set(by_name) == {"click", "country"}
    assert by_name["click"].jensen_shannon_divergence.threshold == pytest.approx(0.05)
    assert by_name["country"].infinity_norm.threshold == pytest.approx(0.2)
    assert dataset.num_examples_comparator.min_fraction_threshold == pytest.approx(0.5)
    assert dataset.num_examples_comparator.max_fraction_threshold == pytest.approx(2.0)


@pytest.mark.parametrize("values, key", [
    ({"max_label_drift": 0.0}, "validation.max_label_drift"),
    ({"max_feature_drift": -1.0}, "validation.max_feature_drift"),
    ({"min_examples_fraction": 1.5}, "validation"),
    ({"drift_features": ["click"], "categorical_drift_features": ["country"]},
     "validation.categorical_drift_features"),
])
def test_bad_validation_settings_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_dict({"validation": values})


def _write_anomalies(root: str, split_dir: str, anomalies: anomalies_pb2.Anomalies) -> None:
    os.makedirs(os.path.join(root, split_dir))
    with open(os.path.join(root, split_dir, ANOMALIES_FILE), "wb") as f:
        f.write(anomalies.SerializeToString())


def _drifted_click() -> anomalies_pb2.Anomalies:
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["click"]
    reason = info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.Type.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH
    reason.short_description = "High approximate Jensen-Shannon divergence between current and previous"
    reason.description = "The approximate Jensen-Shannon divergence between current and previous is 0.2"
    return anomalies


def test_anomalies_are_named_and_stop_the_run(tmp_path):
    schema_check, drift = str(tmp_path / "validator"), str(tmp_path / "drift")
    _write_anomalies(schema_check, "Split-train", anomalies_pb2.Anomalies())  # clean
    _write_anomalies(drift, "SplitPair-train_train", _drifted_click())
    assert read_anomalies(schema_check) == []
    (line,) = read_anomalies(drift)
    assert line.startswith("split train_train: feature 'click': High approximate Jensen-Shannon")

    with pytest.raises(DataValidationFailed) as e:
        check(schema_check, drift, span=20260102, fail=True)
    message = str(e.value)
    assert "span 20260102" in message and "feature 'click'" in message and "is 0.2" in message
    assert "stopped before Transform" in message and "validation.fail_on_anomalies" in message


def test_anomalies_only_warn_when_the_gate_is_open(tmp_path):
    schema_check, drift = str(tmp_path / "validator"), str(tmp_path / "drift")
    vanished = anomalies_pb2.Anomalies()
    vanished.anomaly_info["video_duration"].description = "Column dropped"
    _write_anomalies(schema_check, "Split-eval", vanished)
    os.makedirs(drift)  # a first run: no baseline, DistributionValidator wrote nothing
    found = check(schema_check, drift, span=None, fail=False)
    assert found == ["schema check, split eval: feature 'video_duration': Column dropped"]


def test_clean_data_passes(tmp_path):
    schema_check, drift = str(tmp_path / "validator"), str(tmp_path / "drift")
    _write_anomalies(schema_check, "Split-train", anomalies_pb2.Anomalies())
    _write_anomalies(drift, "SplitPair-train_train", anomalies_pb2.Anomalies())
    assert check(schema_check, drift, span=1, fail=True) == []


def test_validation_section_defaults_are_on():
    v = Config().validation
    assert v.fail_on_anomalies and dataclasses.asdict(v)["max_label_drift"] > 0
