"""The raw-feature signatures answer exactly as serving_default does for the same candidates."""

from __future__ import annotations

from watchnext.core.config import Config
from watchnext.core.contract import SERVING_SIGNATURE
from watchnext.models.export import RAW_SIGNATURE, RAW_WEIGHTED_SIGNATURE
from watchnext.serving.client import request_to_examples

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow

HEADS = Config().head_names
DEFAULT_WEIGHTS = [h.score_weight for h in Config().heads]


def _raw_tensors(request: dict, signature) -> dict[str, tf.Tensor]:
    """One row per candidate: request-level values repeated, lists padded with ""."""
    specs = signature.structured_input_signature[1]
    rows = [{**{k: v for k, v in request.items() if k != "candidates"}, **c} for c in request["candidates"]]
    out = {}
    for name, spec in specs.items():
        if name == "score_weights":
            continue
        values = [row[name] for row in rows]
        if spec.shape.rank == 2:
            width = max(1, max(len(v) for v in values))
            values = [list(v) + [""] * (width - len(v)) for v in values]
        out[name] = tf.constant(values, dtype=spec.dtype)
    return out


def test_raw_signature_matches_serving_default(pushed_model, rank_request):
    loaded = tf.saved_model.load(pushed_model)
    expected = loaded.signatures[SERVING_SIGNATURE](
        examples=tf.constant(request_to_examples(rank_request)))
    raw = loaded.signatures[RAW_SIGNATURE]
    got = raw(**_raw_tensors(rank_request, raw))
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), rtol=1e-5, atol=1e-6)


def test_weighted_raw_signature_takes_per_request_weights(pushed_model, rank_request):
    loaded = tf.saved_model.load(pushed_model)
    weights = [2.0 if h == "like" else w for h, w in zip(HEADS, DEFAULT_WEIGHTS, strict=True)]
    request = dict(rank_request, score_weights=dict(zip(HEADS, weights, strict=True)))
    expected = loaded.signatures[SERVING_SIGNATURE](
        examples=tf.constant(request_to_examples(request, HEADS, DEFAULT_WEIGHTS)))
    fn = loaded.signatures[RAW_WEIGHTED_SIGNATURE]
    n = len(rank_request["candidates"])
    got = fn(**_raw_tensors(rank_request, fn), score_weights=tf.constant([weights] * n, tf.float32))
    np.testing.assert_allclose(got["score"].numpy(), expected["score"].numpy(), rtol=1e-5)
    raw = loaded.signatures[RAW_SIGNATURE]
    unweighted = raw(**_raw_tensors(rank_request, raw))
    assert not np.allclose(got["score"].numpy(), unweighted["score"].numpy())
