"""One client for TF Serving's REST and gRPC APIs (tfshop's server or ``tensorflow_model_server``).

    client = connect("http://127.0.0.1:8501", "tfshop")   # or "grpc://127.0.0.1:8500"
    scores = client.predict({"item_id": np.array([b"i1"]), ...})   # {"ctr": array, ...}

Both kinds take and return NumPy arrays keyed by input / output name, with the signature's
dtypes; a refused request raises ``ClientError`` with the server's message.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np

from tfshop.errors import TfshopError
from tfshop.serving.tensors import dumps, fill_proto, loads, to_json


class ClientError(TfshopError):
    """The server refused or failed a request: ``code`` is the HTTP status or gRPC code name."""

    def __init__(self, code, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Client(ABC):
    def __init__(self, model_name: str, timeout: float):
        self.model_name, self.timeout = model_name, timeout

    @abstractmethod
    def predict(
        self,
        inputs: dict[str, np.ndarray],
        signature_name: str = "serving_default",
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Scores a batch; every input has the batch on its first axis."""

    @abstractmethod
    def status(self, version: int | None = None) -> dict[int, str]:
        """Version → state (``AVAILABLE``, ``END`` ...)."""

    def wait_until_available(self, version: int | None = None, timeout: float = 120) -> int:
        """Polls the status until ``version`` (default: any version) is AVAILABLE; returns it
        (or the newest available one). A requested version in state END fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = self.status()
            except (ClientError, OSError):
                states = {}
            if version is None and "AVAILABLE" in states.values():
                return max(v for v, state in states.items() if state == "AVAILABLE")
            if version is not None and states.get(version) == "AVAILABLE":
                return version
            if version is not None and states.get(version) == "END":
                raise ClientError(
                    "UNAVAILABLE",
                    f"model {self.model_name!r} version {version} is END: "
                    "it failed to load or was unloaded (the server's log says which)",
                )
            if time.monotonic() > deadline:
                wanted = f"version {version}" if version is not None else "any version"
                raise ClientError(
                    "UNAVAILABLE", f"model {self.model_name!r}: {wanted} not available after {timeout}s"
                )
            time.sleep(0.2)

    @abstractmethod
    def close(self) -> None:
        """Releases connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RestClient(Client):
    def __init__(self, url: str, model_name: str, timeout: float = 30):
        import requests

        super().__init__(model_name, timeout)
        self.url = url.rstrip("/")
        self._session = requests.Session()
        self._output_dtypes: dict[tuple, dict[str, np.dtype]] = {}

    def _model_url(self, version: int | None, label: str | None) -> str:
        url = f"{self.url}/v1/models/{self.model_name}"
        if version is not None:
            return f"{url}/versions/{int(version)}"
        return f"{url}/labels/{label}" if label else url

    def _call(self, method: str, url: str, body: dict | None = None) -> dict:
        data = None if body is None else dumps(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        response = self._session.request(method, url, data=data, headers=headers, timeout=self.timeout)
        try:
            payload = loads(response.content)
        except ValueError:
            raise ClientError(response.status_code, response.text[:200]) from None
        if response.status_code != 200:
            raise ClientError(response.status_code, payload.get("error", str(payload)))
        return payload

    def predict(self, inputs, signature_name="serving_default", version=None, label=None):
        url = self._model_url(version, label)
        body = {
            "signature_name": signature_name,
            "inputs": {k: to_json(v) for k, v in inputs.items()},
        }
        dtypes = self._dtypes(url, signature_name)  # first, so a received answer is never lost after it
        outputs = self._call("POST", f"{url}:predict", body)["outputs"]
        if not isinstance(outputs, dict):
            outputs = {next(iter(dtypes)): outputs}
        return {k: _array(v, dtypes.get(k)) for k, v in outputs.items()}

    def _dtypes(self, url: str, signature_name: str) -> dict[str, np.dtype]:
        import tensorflow as tf
        from tensorflow.core.framework import types_pb2

        key = (url, signature_name)
        if key not in self._output_dtypes:
            metadata = self._call("GET", f"{url}/metadata")["metadata"]["signature_def"]["signature_def"]
            outputs = metadata[signature_name]["outputs"]
            self._output_dtypes[key] = {
                name: tf.dtypes.as_dtype(types_pb2.DataType.Value(info["dtype"])).as_numpy_dtype
                for name, info in outputs.items()
            }
        return self._output_dtypes[key]

    def status(self, version=None):
        payload = self._call("GET", self._model_url(version, None))
        return {int(s["version"]): s["state"] for s in payload["model_version_status"]}

    def metadata(self) -> dict:
        return self._call("GET", f"{self._model_url(None, None)}/metadata")

    def close(self) -> None:
        self._session.close()


class GrpcClient(Client):
    def __init__(self, target: str, model_name: str, timeout: float = 30, max_message_bytes: int = 64 << 20):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        super().__init__(model_name, timeout)
        options = [("grpc.max_receive_message_length", max_message_bytes)]
        options.append(("grpc.max_send_message_length", max_message_bytes))
        self._channel = grpc.insecure_channel(target, options=options)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _spec(self, spec, version, label, signature_name=None) -> None:
        spec.name = self.model_name
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ClientError(err.code().name, err.details()) from None

    def predict(self, inputs, signature_name="serving_default", version=None, label=None):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version, label, signature_name)
        for name, value in inputs.items():
            fill_proto(request.inputs[name], value)
        response = self._call(self._predictions.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def status(self, version=None):
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version, None)
        response = self._call(self._models.GetModelStatus, request)
        states = get_model_status_pb2.ModelVersionStatus.State
        return {s.version: states.Name(s.state) for s in response.model_version_status}

    def close(self) -> None:
        self._channel.close()


def connect(url: str, model_name: str, timeout: float = 30) -> Client:
    """``http://host:port`` → REST, ``grpc://host:port`` → gRPC."""
    if url.startswith(("http://", "https://")):
        return RestClient(url, model_name, timeout)
    if url.startswith("grpc://"):
        return GrpcClient(url.removeprefix("grpc://"), model_name, timeout)
    raise TfshopError(f"server URL {url!r} must start with http://, https:// or grpc://")


def _array(values, dtype) -> np.ndarray:
    return np.asarray(values, dtype=dtype) if dtype is not None else np.asarray(values)
