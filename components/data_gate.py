"""DataGate: stop the run before Transform when data validation found anomalies.

TFX's ExampleValidator and DistributionValidator only *record* anomalies; nothing
downstream reads them, so a span with a vanished column or a shifted label rate would
still be featurized, trained on and possibly pushed. This component reads both
anomaly artifacts of the run and fails, naming every anomaly (split, feature, what was
found), so the pipeline stops before Transform (it is Transform's upstream node) and
the CLI can print why. With `validation.fail_on_anomalies: false` it only logs them.

What the two validators check (see pipeline/pipeline.py and `drift_config`):
- ExampleValidator: the new span's statistics against the schema (types, presence,
  domains, value counts);
- DistributionValidator: the new span's training split against the previous run's,
  feature by feature (Jensen-Shannon divergence for numbers and labels, L-infinity
  distance for categorical strings), plus the change in the number of examples. A
  feature configured for comparison but absent from the new span (it vanished) is an
  anomaly too.
"""

# No `from __future__ import annotations`: TFX reads DataGate's annotations as types.
import glob
import logging
import os

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config
from watchnext.core.errors import DataValidationFailed
from watchnext.core.spans import span_of

from tfx import v1 as tfx

log = logging.getLogger(__name__)

# File both validators write per split (ExampleValidator: Split-<s>/, DistributionValidator:
# SplitPair-<s>_<baseline s>/).
ANOMALIES_FILE = "SchemaDiff.pb"
# The span's training split is compared with the previous run's training split: eval
# splits are a fifth the size and would only add sampling noise.
DRIFT_SPLIT_PAIRS = [("train", "train")]


def drift_features(config: Config) -> list[tuple[str, str, float]]:
    """(feature, comparator, threshold) triples compared with the previous span.

    Labels and numeric inputs use the Jensen-Shannon divergence of their histograms (binary
    labels with the tighter `max_label_drift`: a label rate is the first thing a broken
    upstream join moves); low-cardinality categorical inputs (the device feature and the
    `validation.categorical_drift_features`) use the L-infinity distance of their value
    shares. High-cardinality ids (users, videos) are not compared: their mix changes daily.
    """
    v = config.validation
    # Rates (binary labels, presence flags) are tight from day to day; continuous labels
    # (watch time, rating) are as noisy as numeric inputs and share their threshold.
    rates = ({h.label for h in config.heads if h.type == "binary"}
             | {h.presence for h in config.heads if h.presence})
    if v.drift_features:
        numeric = [f for f in v.drift_features if f not in v.categorical_drift_features]
    else:
        numeric = list(config.label_keys) + list(config.features.numeric)
    categorical = list(v.categorical_drift_features)
    if not v.drift_features and config.features.device and config.features.device not in categorical:
        categorical.append(config.features.device)
    return ([(name, "jensen_shannon_divergence", v.max_label_drift if name in rates else v.max_feature_drift)
             for name in dict.fromkeys(numeric)]
            + [(name, "infinity_norm", v.max_categorical_drift) for name in dict.fromkeys(categorical)])


def drift_config(config: Config) -> tfx.proto.DistributionValidatorConfig:
    """DistributionValidator settings from `config.validation`."""
    from tensorflow_metadata.proto.v0 import path_pb2, schema_pb2
    from tfx.proto import distribution_validator_pb2

    v = config.validation
    dataset = distribution_validator_pb2.DistributionValidatorConfig.DatasetConfig()
    for name, comparator, threshold in drift_features(config):
        feature = dataset.feature.add(path=path_pb2.Path(step=[name]))
        getattr(feature.distribution_comparator, comparator).threshold = threshold
    dataset.num_examples_comparator.CopyFrom(schema_pb2.NumericValueComparator(
        min_fraction_threshold=v.min_examples_fraction, max_fraction_threshold=v.max_examples_fraction))
    return distribution_validator_pb2.DistributionValidatorConfig(default_slice_config=dataset)


def read_anomalies(uri: str) -> list[str]:
    """One line per anomaly in an ExampleAnomalies artifact: where, which feature, what."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    lines = []
    for path in sorted(glob.glob(os.path.join(uri, "*", ANOMALIES_FILE))):
        split = os.path.basename(os.path.dirname(path)).split("-", 1)[-1]
        anomalies = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"split {split}: feature {feature!r}: {_describe(info)}")
        if anomalies.HasField("dataset_anomaly_info"):
            lines.append(f"split {split}: dataset: {_describe(anomalies.dataset_anomaly_info)}")
    return lines


def _describe(info: object) -> str:
    reasons = [f"{r.short_description}: {r.description}".strip(": ") for r in info.reason]  # type: ignore[attr-defined]
    return "; ".join(reasons) or info.description  # type: ignore[attr-defined]


def check(anomalies_uri: str, drift_uri: str | None, span: int | None, fail: bool) -> list[str]:
    """Every anomaly of both artifacts; raise DataValidationFailed when `fail` and any exist."""
    found = [f"schema check, {line}" for line in read_anomalies(anomalies_uri)]
    if drift_uri:
        found += [f"drift vs the previous span, {line}" for line in read_anomalies(drift_uri)]
    if not found:
        log.info("data validation: no anomalies in span %s", span)
        return found
    where = f"span {span}" if span is not None else "the new data"
    message = (f"data validation found {len(found)} anomal{'y' if len(found) == 1 else 'ies'} in {where} "
               f"(stopped before Transform; nothing was trained or pushed):\n  "
               + "\n  ".join(found)
               + f"\nanomalies: {anomalies_uri}{f' and {drift_uri}' if drift_uri else ''}. If the change "
               "is expected, relax "
               "validation.* in the config or set validation.fail_on_anomalies: false for this run.")
    if fail:
        raise DataValidationFailed(message)
    log.warning("%s", message)
    return found


@tfx.dsl.components.component
def DataGate(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    # Optional: TFX marks an input artifact optional by its default None (Kubeflow has no drift check).
    drift_anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies] = None,
    fail_on_anomalies: tfx.dsl.components.Parameter[bool] = True,
) -> None:
    """Fail the run when ExampleValidator or DistributionValidator found anomalies."""
    drift_uri = drift_anomalies.uri if drift_anomalies else None
    check(anomalies.uri, drift_uri, span_of(examples), fail_on_anomalies)
