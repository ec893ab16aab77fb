"""What the REST and gRPC front ends share: predict, model status and metadata, and the limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfshop.serving.deadline import NO_DEADLINE, Deadline
from tfshop.serving.limits import Limits
from tfshop.serving.models import LoadedVersion, ModelManager
from tfshop.serving.status import invalid, unavailable
from tfshop.serving.tensors import SignatureSpec

Arrays = dict[str, np.ndarray]
DEFAULT_SIGNATURE = "serving_default"


@dataclass
class Prediction:
    model: LoadedVersion
    signature: str
    outputs: Arrays


class Service:
    """Resolves requests against the model manager and runs them within the limits; once
    stopping, refuses new predictions and lets the ones in flight finish."""

    def __init__(self, manager: ModelManager, limits: Limits):
        self.manager, self.limits = manager, limits
        self._slots = threading.BoundedSemaphore(limits.max_concurrent_requests)
        self._changed = threading.Condition()
        self._in_flight, self._stopping = 0, False

    def stop_accepting(self) -> None:
        """Predictions asked from now on get UNAVAILABLE (HTTP 503)."""
        with self._changed:
            self._stopping = True

    def drain(self, seconds: float) -> int:
        """Waits up to ``seconds`` for the predictions in flight; returns how many are left."""
        with self._changed:
            self._changed.wait_for(lambda: not self._in_flight, timeout=seconds)
            return self._in_flight

    def predict(self, *args, **kwargs) -> Prediction:
        """``_predict``, counted in flight (refused once stopping)."""
        with self._changed:
            if self._stopping:
                raise unavailable("the server is shutting down")
            self._in_flight += 1
        try:
            return self._predict(*args, **kwargs)
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _predict(
        self,
        name: str,
        version: int | None,
        label: str | None,
        signature: str,
        decode: Callable[[SignatureSpec], Arrays],
        output_filter: list[str] | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> Prediction:
        """``decode`` turns the request body into arrays once the signature is known; past
        ``deadline`` (or once its client gave up) the request stops at the next chance."""
        model = self.manager.resolve(name, version, label)
        signature = signature or DEFAULT_SIGNATURE
        spec = model.spec(signature)
        inputs = decode(spec)
        rows = spec.check(inputs, self.limits.max_request_rows)
        unknown = sorted(set(output_filter or ()) - set(spec.outputs))
        if unknown:
            raise invalid(f"output_filter names no output of {signature!r}: {unknown[0]!r}")
        wait, remaining = self.limits.queue_timeout_seconds, deadline.remaining()
        if not self._slots.acquire(timeout=wait if remaining is None else max(0.0, min(wait, remaining))):
            deadline.check()
            raise unavailable("the server is busy: too many requests in flight")
        try:
            deadline.check()
            outputs = model.predict(signature, inputs, rows, deadline)
        finally:
            self._slots.release()
        if output_filter:
            outputs = {k: v for k, v in outputs.items() if k in output_filter}
        return Prediction(model, signature, outputs)

    def status(self, name: str, version: int | None = None, label: str | None = None):
        """A ``GetModelStatusResponse``."""
        from tensorflow_serving.apis import get_model_status_pb2, status_pb2

        states = self.manager.states(name, version, label)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state in states.items():
            response.model_version_status.add(
                version=number,
                state=get_model_status_pb2.ModelVersionStatus.State.Value(state.state),
                status=status_pb2.StatusProto(error_code=2 if state.error else 0, error_message=state.error),
            )
        return response

    def metadata(self, name: str, version: int | None = None, label: str | None = None):
        """The resolved version and its ``SignatureDefMap``."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        model = self.manager.resolve(name, version, label)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in model.signature_defs.items():
            signatures.signature_def[key].CopyFrom(signature_def)
        return model, signatures
