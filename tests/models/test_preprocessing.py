"""preprocessing_fn run by tf.Transform on Beam over a small in-memory dataset."""

from __future__ import annotations

import tempfile

import watchnext  # noqa: F401
from watchnext.core.config import Config
from watchnext.core.contract import CONFIG_KEY
from watchnext.models.preprocessing import preprocessing_fn

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

CONFIG = Config()


def _raw_spec() -> dict:
    f = CONFIG.features
    spec = {n.name: tf.io.FixedLenFeature([], tf.string) for n in f.ids if not n.multivalent}
    spec.update({n.name: tf.io.VarLenFeature(tf.string) for n in f.ids if n.multivalent})
    spec.update({n: tf.io.FixedLenFeature([], tf.float32) for n in f.numeric})
    spec[f.position] = tf.io.FixedLenFeature([], tf.int64)
    spec.update({k: tf.io.FixedLenFeature([], tf.float32) for k in CONFIG.label_keys})
    return spec


def _rows() -> list[dict]:
    f = CONFIG.features
    rows = []
    for i in range(6):
        row = {n.name: f"{n.name}-{i % 3}".encode() for n in f.ids if not n.multivalent}
        row["query_video_id"] = f"v{i % 2}".encode()
        row["candidate_video_id"] = f"v{(i + 1) % 4}".encode()
        row["watch_history"] = [f"v{j}".encode() for j in range(i)]  # 0..5 ids, one row empty
        row.update({n: float(i) for n in f.numeric})
        row[f.position] = [0, 3, 25, 1, 2, 4][i]
        row.update({k: float(i % 2) for k in CONFIG.label_keys})
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def transformed() -> list[dict]:
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_raw_spec()))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        (data, _), _ = (_rows(), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda x: preprocessing_fn(x, {CONFIG_KEY: CONFIG.to_json()}), output_record_batches=False)
    return list(data)


def test_every_input_and_label_has_an_output(transformed):
    keys = set(transformed[0])
    expected = {f.name for f in CONFIG.features.ids} | set(CONFIG.features.numeric)
    expected |= {CONFIG.features.position} | set(CONFIG.label_keys)
    assert keys == expected


def test_shared_video_vocabulary_maps_same_id_to_same_index(transformed):
    # Row 1: query v1; row 0: candidate v1 -> same index because both use vocabulary "video".
    assert transformed[1]["query_video_id"] == transformed[0]["candidate_video_id"]
    # Row 2 has history [v0, v1]; v1's index equals the query index of row 1.
    hist = transformed[2]["watch_history"]
    assert hist[1] == transformed[1]["query_video_id"]


def test_history_is_padded_and_truncated_to_max_length(transformed):
    length = next(f.max_length for f in CONFIG.features.ids if f.multivalent)
    assert len(transformed[0]["watch_history"]) == length
    assert all(v == -1 for v in transformed[0]["watch_history"])  # empty history
    assert list(transformed[3]["watch_history"][3:]) == [-1] * (length - 3)


def test_numeric_features_are_z_scored(transformed):
    for name in CONFIG.features.numeric:
        values = np.array([r[name] for r in transformed])
        assert abs(values.mean()) < 1e-5 and abs(values.std() - 1.0) < 1e-4


def test_position_clipped_to_max_position(transformed):
    positions = [r[CONFIG.features.position] for r in transformed]
    assert positions == [0, 3, CONFIG.features.max_position - 1, 1, 2, 4]


def test_labels_pass_through_as_float(transformed):
    assert [r["click"] for r in transformed] == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_transform_graph_serves_without_labels_and_position(tmp_path):
    """Serving omits labels and position: the saved graph must prune those outputs only."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_raw_spec()))
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        _, transform_fn = (_rows(), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda x: preprocessing_fn(x, {CONFIG_KEY: CONFIG.to_json()}), output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "tft"))
    layer = tft.TFTransformOutput(str(tmp_path / "tft")).transform_features_layer()
    spec = {k: v for k, v in _raw_spec().items()
            if k not in set(CONFIG.label_keys) | {CONFIG.features.position}}
    example = tf.train.Example()
    for k, v in _rows()[4].items():
        if k not in spec:
            continue
        values = v if isinstance(v, list) else [v]
        feature = example.features.feature[k]
        if isinstance(values[0] if values else b"", bytes):
            feature.bytes_list.value.extend(values)
        elif isinstance(values[0], float):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    parsed = tf.io.parse_example([example.SerializeToString()], spec)
    out = layer(parsed)
    assert CONFIG.features.position not in out
    assert not set(CONFIG.label_keys) & set(out)
    assert out["candidate_video_id"].shape == (1,)


def test_a_table_without_position_has_no_position_output_and_int_labels_become_float():
    """data.source table: no position, device or request; labels derived as int64 by the ExampleGen."""
    from watchnext.core.config import from_dict

    config = from_dict({
        "data": {"source": "table"},
        "features": {"ids": [{"name": "job", "vocabulary": "job", "embedding_dim": 4}], "numeric": ["age"],
                     "log1p_numeric": [], "position": "", "device": "", "request_id": ""},
        "heads": [{"name": "rich", "type": "binary", "label": "rich"}],
        "model": {"position_mode": "none"},
    })
    spec = {"job": tf.io.FixedLenFeature([], tf.string), "age": tf.io.FixedLenFeature([], tf.float32),
            "rich": tf.io.FixedLenFeature([], tf.int64)}
    rows = [{"job": [b"a", b"b", b"a"][i % 3], "age": float(20 + i), "rich": i % 2} for i in range(6)]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        (data, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda x: preprocessing_fn(x, {CONFIG_KEY: config.to_json()}), output_record_batches=False)
    out = list(data)
    assert set(out[0]) == {"job", "age", "rich"}  # no position output
    assert [r["rich"] for r in out] == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert out[0]["job"] == out[3]["job"] != out[1]["job"]


# ---------------------------------------------------------------------------
# Numeric features encoded by their quantile bins (features.numeric_embeddings).


def _embedded_table_config(**piecewise: object):
    from watchnext.core.config import from_dict

    return from_dict({
        "data": {"source": "table"},
        "features": {"ids": [{"name": "job", "vocabulary": "job", "embedding_dim": 4}],
                     "numeric": ["age", "gains"], "log1p_numeric": ["gains"],
                     "numeric_embeddings": [{"name": "age", "encoding": "buckets", "buckets": 4},
                                            {"name": "gains", "encoding": "piecewise_linear", "buckets": 4,
                                             **piecewise}],
                     "position": "", "device": "", "request_id": ""},
        "heads": [{"name": "rich", "type": "binary", "label": "rich"}],
        "model": {"position_mode": "none"},
    })


def _embedded_rows() -> list[dict]:
    # age 0..39 (ten rows per quartile); gains 0 for half the rows, then e^k - 1 (log1p → k).
    return [{"job": b"a", "age": float(i), "gains": float(np.expm1(max(0, i - 19))), "rich": i % 2}
            for i in range(40)]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> tuple[list[dict], str]:
    config = _embedded_table_config()
    spec = {"job": tf.io.FixedLenFeature([], tf.string), "age": tf.io.FixedLenFeature([], tf.float32),
            "gains": tf.io.FixedLenFeature([], tf.float32), "rich": tf.io.FixedLenFeature([], tf.int64)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    tmp = tmp_path_factory.mktemp("embedded")
    with tft_beam.Context(temp_dir=str(tmp / "tmp")):
        (data, _), transform_fn = (_embedded_rows(), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda x: preprocessing_fn(x, {CONFIG_KEY: config.to_json()}), output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "tft"))
    return list(data), str(tmp / "tft")


def test_a_bucketized_numeric_feature_gets_its_quantile_bin_beside_its_z_score(embedded):
    data, _ = embedded
    assert set(data[0]) == {"job", "age", "age_buckets", "gains", "gains_piecewise_linear", "rich"}
    buckets = [int(r["age_buckets"]) for r in data]
    # Quartiles of 0..39: ten rows in each of the four bins, in order of age.
    assert buckets == sorted(buckets) and [buckets.count(b) for b in range(4)] == [10, 10, 10, 10]
    ages = np.array([r["age"] for r in data])
    assert abs(ages.mean()) < 1e-5 and abs(ages.std() - 1.0) < 1e-4  # the value is still there


def test_piecewise_linear_encoding_is_ordered_and_spans_the_training_range(embedded):
    data, _ = embedded
    codes = np.array([r["gains_piecewise_linear"] for r in data])
    assert codes.shape == (40, 4) and codes.min() >= 0.0 and codes.max() <= 1.0
    # The 20 zero rows (a mass at the minimum: their quantile bins have zero width) share one
    # code, the lowest; the maximum is all ones.
    np.testing.assert_array_equal(codes[:20], np.tile(codes[0], (20, 1)))
    assert codes[0].sum() < codes[20].sum()
    np.testing.assert_array_equal(codes[-1], np.ones(4))
    totals = codes.sum(axis=1)
    assert np.all(np.diff(totals) >= 0) and totals[-1] > totals[25] > totals[19]  # monotone in the value
    # Each row is 1…1, then one fraction, then 0…0.
    for row in codes:
        inside = row[(row > 0) & (row < 1)]
        assert len(inside) <= 1 and np.all(np.diff(row) <= 0)


def test_the_transform_graph_bins_a_raw_serving_value_as_in_training(embedded):
    data, tft_dir = embedded
    layer = tft.TFTransformOutput(tft_dir).transform_features_layer()
    rows = _embedded_rows()
    raw = {"job": tf.constant([r["job"] for r in rows]),
           "age": tf.constant([r["age"] for r in rows], tf.float32),
           "gains": tf.constant([r["gains"] for r in rows], tf.float32)}
    out = layer(raw)
    np.testing.assert_array_equal(out["age_buckets"].numpy(), [r["age_buckets"] for r in data])
    np.testing.assert_allclose(out["gains_piecewise_linear"].numpy(),
                               [r["gains_piecewise_linear"] for r in data], rtol=1e-6)
    # Beyond the training range: the last bin, and an encoding saturated at 1.
    beyond = layer({"job": tf.constant([b"a"]), "age": tf.constant([1000.0]),
                    "gains": tf.constant([1e9])})
    assert int(beyond["age_buckets"].numpy()[0]) == 3
    np.testing.assert_array_equal(beyond["gains_piecewise_linear"].numpy(), np.ones((1, 4)))


def test_piecewise_linear_by_hand_including_a_bin_of_zero_width():
    from watchnext.models.preprocessing import piecewise_linear

    edges = tf.constant([0.0, 0.0, 2.0, 4.0])  # a zero-width first bin (a mass of zeros), then [0, 2), [2, 4]
    got = piecewise_linear(tf.constant([-1.0, 0.0, 1.0, 3.0, 5.0]), edges).numpy()
    np.testing.assert_allclose(got, [[0, 0, 0], [1, 0, 0], [1, 0.5, 0], [1, 1, 0.5], [1, 1, 1]])
