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

Request size: TF Serving's own gRPC server accepts messages up to 2 GB, but gRPC's
default limit (4 MiB) is what most other servers and proxies in between keep, and 10,000
candidates with a full watch history are 4 MB or more of tf.Examples. The gRPC backend
therefore sends the candidates in consecutive calls of at most
GRPC_DEFAULT_MAX_MESSAGE_BYTES each; every candidate is scored on its own, so the scores
do not depend on how they are chunked.
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

from watchnext.core.contract import EXAMPLES_INPUT, SCORE_OUTPUT, SCORE_WEIGHTS_FEATURE, SERVING_SIGNATURE
from watchnext.core.log_schema import example_feature_types

CANDIDATES_KEY = "candidates"
# gRPC's default maximum message size (grpc.max_receive_message_length), in bytes.
GRPC_DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# Headroom for what a PredictRequest holds besides the examples (model spec, tensor
# shape) and for each example's field tag and length prefix.
_REQUEST_OVERHEAD_BYTES = 4096
_PER_EXAMPLE_OVERHEAD_BYTES = 8


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
                        default_weights: Sequence[float] | None = None,
                        feature_types: dict[str, str] | None = None) -> list[bytes]:
    """Serialized tf.Examples, one per candidate, in the order given.

    `score_weights` (a mapping head → weight) is written into every example when
    given; heads it does not name keep `default_weights` (needs `head_names`).
    `feature_types`: the examples' features and types (a declared log schema's
    `LogSchema.example_feature_types()`); None: the default log schema's.
    """
    import tensorflow as tf

    if not isinstance(request, dict):
        raise RankRequestError("the request must be a JSON object")
    candidates = request.get(CANDIDATES_KEY)
    if not isinstance(candidates, list):
        raise RankRequestError(f"request.{CANDIDATES_KEY}: expected a list of candidate objects")
    types = feature_types if feature_types is not None else example_feature_types()
    shared = {k: v for k, v in request.items() if k not in (CANDIDATES_KEY, SCORE_WEIGHTS_FEATURE)}
    weights = _weights(request.get(SCORE_WEIGHTS_FEATURE), head_names, default_weights)
    # The request-level features are the same in every example: build them once.
    shared_features = _features(shared, types, "request")
    if weights is not None:
        weight_list = tf.train.FloatList(value=weights)
        shared_features[SCORE_WEIGHTS_FEATURE] = tf.train.Feature(float_list=weight_list)
    examples = []
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, dict):
            raise RankRequestError(f"request.{CANDIDATES_KEY}[{i}]: expected an object")
        features = {**shared_features, **_features(candidate, types, f"request.{CANDIDATES_KEY}[{i}]")}
        examples.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return examples


def _features(part: dict[str, Any], types: dict[str, str], where: str) -> dict[str, Any]:
    """tf.train.Features of one part of the request (its shared fields, or one candidate)."""
    features = {}
    for name, value in part.items():
        if name not in types:
            raise RankRequestError(f"{where}.{name}: unknown feature; known: {sorted(types)}")
        features[name] = _feature(name, value, types[name], where)
    return features


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


def chunk_by_size(examples: list[bytes], max_request_bytes: int | None) -> list[list[bytes]]:
    """Consecutive runs of `examples` whose PredictRequest stays within max_request_bytes
    (None: one run). A single example over the limit is a RankRequestError naming it."""
    if max_request_bytes is None:
        return [examples] if examples else []
    budget = max_request_bytes - _REQUEST_OVERHEAD_BYTES
    chunks: list[list[bytes]] = []
    chunk: list[bytes] = []
    size = 0
    for i, example in enumerate(examples):
        cost = len(example) + _PER_EXAMPLE_OVERHEAD_BYTES
        if cost > budget:
            raise RankRequestError(f"request.{CANDIDATES_KEY}[{i}]: {len(example)} bytes as a tf.Example, "
                                   f"more than a request may hold ({max_request_bytes} bytes)")
        if chunk and size + cost > budget:
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(example)
        size += cost
    if chunk:
        chunks.append(chunk)
    return chunks


class GrpcBackend:
    """TF Serving's gRPC PredictionService (default port 8500).

    Candidates go in calls of at most `max_request_bytes` (None: all in one call); the
    channel itself accepts answers of any size (gRPC's default would stop at 4 MiB).
    """

    def __init__(self, target: str, model_name: str, timeout: float = 10.0,
                 max_request_bytes: int | None = GRPC_DEFAULT_MAX_MESSAGE_BYTES) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.model_name = model_name
        self.timeout = timeout
        self.max_request_bytes = max_request_bytes

    def predict(self, examples: list[bytes]) -> dict[str, list[float]]:
        outputs: dict[str, list[float]] = {}
        for chunk in chunk_by_size(examples, self.max_request_bytes):
            for key, values in self._predict(chunk).items():
                outputs.setdefault(key, []).extend(values)
        return outputs

    def _predict(self, examples: list[bytes]) -> dict[str, list[float]]:
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
            outputs = {SCORE_OUTPUT: outputs}
        return {k: list(v) for k, v in outputs.items()}


def rank(request: dict[str, Any], backend: Any, head_names: Sequence[str] | None = None,
         default_weights: Sequence[float] | None = None, feature_types: dict[str, str] | None = None
         ) -> list[RankedCandidate]:
    """Score the request's candidates and return them best first (stable for ties)."""
    examples = request_to_examples(request, head_names, default_weights, feature_types)
    if not examples:
        return []
    outputs = backend.predict(examples)
    if SCORE_OUTPUT not in outputs:
        raise RuntimeError(f"the model returned no {SCORE_OUTPUT!r} output (got {sorted(outputs)})")
    for key, values in outputs.items():
        if len(values) != len(examples):
            raise RuntimeError(f"output {key!r} has {len(values)} values for {len(examples)} candidates")
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError(f"output {key!r} is not finite: the model is broken; do not serve it")
    ranked = [
        RankedCandidate(candidate, outputs[SCORE_OUTPUT][i],
                        {k: v[i] for k, v in sorted(outputs.items()) if k != SCORE_OUTPUT})
        for i, candidate in enumerate(request[CANDIDATES_KEY])
    ]
    order = sorted(range(len(ranked)), key=lambda i: -ranked[i].score)
    return [ranked[i] for i in order]
