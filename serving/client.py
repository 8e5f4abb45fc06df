"""Rank candidates for one watch-next request with a served model.

A request is JSON: request-level features (user, query video, context) and a list
of candidates, each with its own features:

    {"user_id": "u1", "query_video_id": "v3", "device": "mobile", "country": "US",
     "user_activity": 12, "watch_history": ["v1", "v2"],
     "candidates": [{"candidate_video_id": "v7", "video_duration": 300,
                     "video_age_days": 3, "video_log_views": 8.1}, ...],
     "score_weights": {"click": 1.0, "like": 2.0}}          # optional, per head

Each candidate becomes one tf.Example (request features + its own), typed by the log
schema, and goes to the model's `serving_default` through one of three backends:
in-process (a SavedModel directory), TF Serving gRPC (PredictionService.Predict) or
TF Serving REST (`POST /v1/models/<name>:predict`). The answer is the candidates
ordered by `score`, with every head's prediction.
"""

from __future__ import annotations

import base64
import json
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchnext.components.log_example_gen.schema import example_feature_types
from watchnext.models.export import EXAMPLES_INPUT, SERVING_SIGNATURE
from watchnext.models.features import SCORE_WEIGHTS_FEATURE

CANDIDATES_KEY = "candidates"
SCORE_KEY = "score"


class RankRequestError(ValueError):
    """The request is malformed; the message names the field (INVALID_ARGUMENT)."""


@dataclass
class RankedCandidate:
    """One candidate with its score and per-head predictions."""

    candidate: dict[str, Any]
    score: float
    predictions: dict[str, float]


def _feature(name: str, value: Any, kind: str, where: str) -> Any:
    import tensorflow as tf

    values = value if isinstance(value, list) else [value]
    try:
        if kind == "bytes":
            if not all(isinstance(v, str) for v in values):
                raise TypeError
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise TypeError
        if kind == "int64":
            if any(float(v) != int(v) for v in values):
                raise TypeError
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
        if not all(math.isfinite(float(v)) for v in values):
            raise RankRequestError(f"{where}.{name}: {value!r} is not a finite number")
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
    except TypeError:
        expected = {"bytes": "a string", "int64": "an integer", "float": "a number"}[kind]
        raise RankRequestError(f"{where}.{name}: expected {expected}, got {value!r}") from None


def request_to_examples(request: dict[str, Any], head_names: Sequence[str] | None = None,
                        default_weights: Sequence[float] | None = None) -> list[bytes]:
    """Serialized tf.Examples, one per candidate, in the order given.

    `score_weights` (a mapping head → weight) is written into every example when
    given; heads it does not name keep `default_weights` (needs `head_names`).
    """
    import tensorflow as tf

    if not isinstance(request, dict):
        raise RankRequestError("the request must be a JSON object")
    candidates = request.get(CANDIDATES_KEY)
    if not isinstance(candidates, list):
        raise RankRequestError(f"request.{CANDIDATES_KEY}: expected a list of candidate objects")
    types = example_feature_types()
    shared = {k: v for k, v in request.items() if k not in (CANDIDATES_KEY, SCORE_WEIGHTS_FEATURE)}
    weights = _weights(request.get(SCORE_WEIGHTS_FEATURE), head_names, default_weights)
    examples = []
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, dict):
            raise RankRequestError(f"request.{CANDIDATES_KEY}[{i}]: expected an object")
        features = {}
        for where, part in (("request", shared), (f"request.{CANDIDATES_KEY}[{i}]", candidate)):
            for name, value in part.items():
                if name not in types:
                    raise RankRequestError(f"{where}.{name}: unknown feature; known: {sorted(types)}")
                features[name] = _feature(name, value, types[name], where)
        if weights is not None:
            features[SCORE_WEIGHTS_FEATURE] = tf.train.Feature(float_list=tf.train.FloatList(value=weights))
        examples.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return examples


def _weights(given: Any, head_names: Sequence[str] | None, defaults: Sequence[float] | None
             ) -> list[float] | None:
    if given is None:
        return None
    if not isinstance(given, dict):
        raise RankRequestError(f"request.{SCORE_WEIGHTS_FEATURE}: expected an object head → weight")
    if head_names is None or defaults is None:
        raise RankRequestError(f"request.{SCORE_WEIGHTS_FEATURE}: this backend does not know the heads; "
                               "pass --config so weights can be ordered")
    unknown = set(given) - set(head_names)
    if unknown:
        raise RankRequestError(f"request.{SCORE_WEIGHTS_FEATURE}: unknown heads {sorted(unknown)}; "
                               f"heads are {list(head_names)}")
    out = []
    for name, default in zip(head_names, defaults, strict=True):
        w = given.get(name, default)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise RankRequestError(f"request.{SCORE_WEIGHTS_FEATURE}.{name}: {w!r} is not a finite number")
        out.append(float(w))
    return out


def tf_error_summary(message: str) -> str:
    """The informative line of a TensorFlow error (e.g. "Feature: x ... is required").

    Graph execution errors start with "Graph execution error:" and a stack of where the
    failing op was defined; the reason is on its own line further down.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Feature:", "Name:", "Key:")) or "required but could not be found" in line:
            return line
    noise = ("[[", "Graph execution error", "Detected at node", "File ", "Traceback")
    useful = [line for line in lines if not line.startswith(noise)]
    return useful[-1] if useful else message.strip()


# ---------------------------------------------------------------------------
# Backends: each maps serialized examples to {output name: list of floats}.


class InProcessBackend:
    """`serving_default` of a SavedModel directory, loaded in this process."""

    def __init__(self, model_dir: str) -> None:
        import tensorflow as tf

        self._fn = tf.saved_model.load(model_dir).signatures[SERVING_SIGNATURE]

    def predict(self, examples: list[bytes]) -> dict[str, list[float]]:
        import tensorflow as tf

        try:
            out = self._fn(**{EXAMPLES_INPUT: tf.constant(examples, dtype=tf.string)})
        except tf.errors.InvalidArgumentError as e:
            raise RankRequestError(f"the model rejected the request: {tf_error_summary(e.message)}") from None
        return {k: v.numpy().tolist() for k, v in out.items()}


class GrpcBackend:
    """TF Serving's gRPC PredictionService (default port 8500)."""

    def __init__(self, target: str, model_name: str, timeout: float = 10.0) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._channel = grpc.insecure_channel(target)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.model_name = model_name
        self.timeout = timeout

    def predict(self, examples: list[bytes]) -> dict[str, list[float]]:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = SERVING_SIGNATURE
        request.inputs[EXAMPLES_INPUT].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise RankRequestError(f"TF Serving rejected the request: {e.details()}") from None
            raise
        return {k: tf.make_ndarray(v).reshape(-1).tolist() for k, v in response.outputs.items()}

    def close(self) -> None:
        self._channel.close()


class RestBackend:
    """TF Serving's REST API (default port 8501), columnar `inputs` format."""

    def __init__(self, base_url: str, model_name: str, timeout: float = 10.0) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/models/{model_name}:predict"
        self.timeout = timeout

    def predict(self, examples: list[bytes]) -> dict[str, list[float]]:
        body = json.dumps({
            "signature_name": SERVING_SIGNATURE,
            "inputs": {EXAMPLES_INPUT: [{"b64": base64.b64encode(e).decode()} for e in examples]},
        }).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            if e.code == 400:
                raise RankRequestError(f"TF Serving rejected the request: {detail}") from None
            raise RuntimeError(f"TF Serving REST answered {e.code}: {detail}") from None
        outputs = answer["outputs"]
        if not isinstance(outputs, dict):  # a single-output signature answers with a bare list
            outputs = {SCORE_KEY: outputs}
        return {k: list(v) for k, v in outputs.items()}


def rank(request: dict[str, Any], backend: Any, head_names: Sequence[str] | None = None,
         default_weights: Sequence[float] | None = None) -> list[RankedCandidate]:
    """Score the request's candidates and return them best first (stable for ties)."""
    examples = request_to_examples(request, head_names, default_weights)
    if not examples:
        return []
    outputs = backend.predict(examples)
    if SCORE_KEY not in outputs:
        raise RuntimeError(f"the model returned no {SCORE_KEY!r} output (got {sorted(outputs)})")
    for key, values in outputs.items():
        if len(values) != len(examples):
            raise RuntimeError(f"output {key!r} has {len(values)} values for {len(examples)} candidates")
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError(f"output {key!r} is not finite: the model is broken; do not serve it")
    ranked = [
        RankedCandidate(candidate, outputs[SCORE_KEY][i],
                        {k: v[i] for k, v in sorted(outputs.items()) if k != SCORE_KEY})
        for i, candidate in enumerate(request[CANDIDATES_KEY])
    ]
    order = sorted(range(len(ranked)), key=lambda i: -ranked[i].score)
    return [ranked[i] for i in order]
