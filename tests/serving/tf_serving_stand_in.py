"""Stand-ins for TF Serving in tests: real gRPC and HTTP servers speaking its Predict API.

No TF Serving binary is available where these tests run, so these servers load the
exported SavedModel with `tf.saved_model.load` and answer TF Serving's
PredictionService.Predict (gRPC) and `POST /v1/models/<name>:predict` (REST, columnar
"inputs" or row "instances") with the same message formats and error codes
(INVALID_ARGUMENT / HTTP 400). They check the client's wire format, not TF Serving.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import watchnext  # noqa: F401
from watchnext.serving.client import tf_error_summary

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


class _Model:
    def __init__(self, model_dir: str, name: str) -> None:
        self.name = name
        self.loaded = tf.saved_model.load(model_dir)

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fn = self.loaded.signatures[signature or "serving_default"]
        expected = set(fn.structured_input_signature[1])
        if set(inputs) != expected:
            raise ValueError(f"input keys {sorted(inputs)} do not match the signature's {sorted(expected)}")
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}


class GrpcStandIn(prediction_service_pb2_grpc.PredictionServiceServicer):
    """PredictionService.Predict over real gRPC on 127.0.0.1."""

    def __init__(self, model_dir: str, name: str) -> None:
        self.model = _Model(model_dir, name)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def Predict(self, request, context):
        if request.model_spec.name != self.model.name:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: {request.model_spec.name}")
        try:
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            outputs = self.model.run(request.model_spec.signature_name, inputs)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except tf.errors.InvalidArgumentError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, tf_error_summary(e.message))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for k, v in outputs.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response

    def __enter__(self) -> GrpcStandIn:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


def _decode(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class RestStandIn:
    """`POST /v1/models/<name>:predict` over real HTTP on 127.0.0.1."""

    def __init__(self, model_dir: str, name: str) -> None:
        model = _Model(model_dir, name)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path != f"/v1/models/{model.name}:predict":
                    self._send(404, {"error": f"Servable not found for request: {self.path}"})
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    signature = body.get("signature_name", "serving_default")
                    if "inputs" in body:
                        raw = body["inputs"]
                        inputs = raw if isinstance(raw, dict) else {"examples": raw}
                        inputs = {k: np.array(_decode(v), dtype=object) for k, v in inputs.items()}
                        out = model.run(signature, inputs)
                        self._send(200, {"outputs": {k: v.tolist() for k, v in out.items()}})
                    else:
                        instances = np.array(_decode(body["instances"]), dtype=object)
                        out = model.run(signature, {"examples": instances})
                        rows = [{k: v[i].tolist() for k, v in out.items()} for i in range(len(instances))]
                        self._send(200, {"predictions": rows})
                except (ValueError, KeyError) as e:
                    self._send(400, {"error": str(e)})
                except tf.errors.InvalidArgumentError as e:
                    self._send(400, {"error": tf_error_summary(e.message)})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RestStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
