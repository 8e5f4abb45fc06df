"""Serving with numeric features encoded by quantile bins: clients send the raw value.

The bins' boundaries are constants of the Transform graph, which every serving signature
applies, so `serving_default` (tf.Examples) and `serving_raw` (tensors) must answer exactly
as the model does on the features Transform produced in training.
"""

from __future__ import annotations

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import from_dict
from watchnext.core.contract import CONFIG_KEY, SERVING_SIGNATURE
from watchnext.models import model as M
from watchnext.models.export import RAW_SIGNATURE, export_model
from watchnext.models.features import vocab_sizes
from watchnext.models.preprocessing import preprocessing_fn

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

CONFIG = from_dict({
    "data": {"source": "table"},
    "features": {"ids": [{"name": "job", "vocabulary": "job", "embedding_dim": 2, "oov_buckets": 1}],
                 "numeric": ["age", "gains"], "log1p_numeric": ["gains"],
                 "numeric_embeddings": [
                     {"name": "age", "encoding": "buckets", "buckets": 5, "embedding_dim": 3,
                      "keep_value": False},
                     {"name": "gains", "encoding": "piecewise_linear", "buckets": 4, "embedding_dim": 3}],
                 "position": "", "device": "", "request_id": ""},
    "heads": [{"name": "rich", "type": "binary", "label": "rich"},
              {"name": "old", "type": "binary", "label": "old"}],
    "model": {"position_mode": "none", "shared_hidden_units": 8, "num_experts": 2, "expert_units": [4],
              "tower_units": [4]},
})
RAW_SPEC = {"job": tf.io.FixedLenFeature([], tf.string), "age": tf.io.FixedLenFeature([], tf.float32),
            "gains": tf.io.FixedLenFeature([], tf.float32), "rich": tf.io.FixedLenFeature([], tf.int64),
            "old": tf.io.FixedLenFeature([], tf.int64)}


def _rows() -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        age, gains = float(rng.integers(16, 90)), float(rng.choice([0.0, rng.exponential(5000.0)]))
        rows.append({"job": [b"clerk", b"nurse", b"pilot"][i % 3], "age": age, "gains": gains,
                     "rich": int(gains > 3000), "old": int(age > 60)})
    return rows


def _example(row: dict) -> bytes:
    example = tf.train.Example()
    example.features.feature["job"].bytes_list.value.append(row["job"])
    example.features.feature["age"].float_list.value.append(row["age"])
    example.features.feature["gains"].float_list.value.append(row["gains"])
    return example.SerializeToString()


def test_serving_takes_raw_numeric_values_and_matches_the_transformed_path(tmp_path):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        (transformed, _), transform_fn = (_rows(), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda x: preprocessing_fn(x, {CONFIG_KEY: CONFIG.to_json()}), output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "tft"))
    # The raw schema, which the Transform component writes beside the graph (serving parses by it).
    metadata_io.write_metadata(metadata, str(tmp_path / "tft" / tft.TFTransformOutput.RAW_METADATA_DIR))
    tft_output = tft.TFTransformOutput(str(tmp_path / "tft"))
    inputs = [k for k in transformed[0] if k not in CONFIG.label_keys]
    assert {"age_buckets", "gains_piecewise_linear"} <= set(inputs)
    batch = {k: tf.constant(np.stack([r[k] for r in transformed])) for k in inputs}
    assert batch["age_buckets"].shape == (60,) and batch["gains_piecewise_linear"].shape == (60, 4)

    tf_keras.utils.set_random_seed(3)
    model = M.build_model(CONFIG, vocab_sizes(tft_output, CONFIG))
    expected = model(batch, training=False)
    export_model(model, tft_output, CONFIG, str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))

    rows = _rows()
    by_examples = loaded.signatures[SERVING_SIGNATURE](examples=tf.constant([_example(r) for r in rows]))
    by_tensors = loaded.signatures[RAW_SIGNATURE](
        job=tf.constant([r["job"] for r in rows]), age=tf.constant([r["age"] for r in rows], tf.float32),
        gains=tf.constant([r["gains"] for r in rows], tf.float32))
    for served in (by_examples, by_tensors):
        assert set(served) == {"rich", "old", M.SCORE_KEY}
        for key in ("rich", "old", M.SCORE_KEY):
            np.testing.assert_allclose(np.reshape(served[key].numpy(), [-1]),
                                       np.reshape(expected[key].numpy(), [-1]), rtol=1e-5, atol=1e-7)
    # The encodings reach the model: rows that differ only in age's bin score differently.
    young, old = dict(rows[0], age=18.0), dict(rows[0], age=85.0)
    pair = loaded.signatures[SERVING_SIGNATURE](examples=tf.constant([_example(young), _example(old)]))
    assert pair["old"].numpy().ravel()[0] != pair["old"].numpy().ravel()[1]
