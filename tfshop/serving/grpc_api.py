"""TF Serving's gRPC API on the protos and service stubs of the ``tensorflow-serving-api`` package.

Served: ``PredictionService/Predict``, ``PredictionService/GetModelMetadata`` and
``ModelService/GetModelStatus``; the other methods answer UNIMPLEMENTED.
"""

from __future__ import annotations

import functools
import logging
from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfshop.serving.deadline import Deadline
from tfshop.serving.service import Service
from tfshop.serving.status import ServingError, invalid
from tfshop.serving.tensors import fill_proto, from_proto

log = logging.getLogger(__name__)


def _aborts_on_error(method):
    """Turns a ``ServingError`` (or any crash) into the call's gRPC status; the server carries on."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as err:
            context.abort(err.code, err.message)
        except Exception as err:  # noqa: BLE001
            log.exception("gRPC %s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(err).__name__}: {err}")

    return wrapper


def _spec(model_spec) -> tuple[str, int | None, str | None]:
    version = model_spec.version.value if model_spec.HasField("version") else None
    return model_spec.name, version, model_spec.version_label or None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, service: Service):
        self.service = service

    @_aborts_on_error
    def Predict(self, request, context):  # noqa: N802  (the proto's method name)
        def decode(spec):
            limits = self.service.limits  # each value takes at least a byte of a real request
            for name, proto in request.inputs.items():  # before any tensor is made of them
                dims = [d.size for d in proto.tensor_shape.dim]
                spec.check_declared_shape(name, dims, limits.max_request_rows, limits.max_request_bytes)
            return {name: from_proto(name, proto, spec.dtype(name)) for name, proto in request.inputs.items()}

        name, version, label = _spec(request.model_spec)
        result = self.service.predict(
            name,
            version,
            label,
            request.model_spec.signature_name,
            decode,
            list(request.output_filter),
            Deadline(context.time_remaining(), context.is_active),
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = result.model.version
        response.model_spec.signature_name = result.signature
        for key, value in result.outputs.items():
            fill_proto(response.outputs[key], value)
        return response

    @_aborts_on_error
    def GetModelMetadata(self, request, context):  # noqa: N802
        if list(request.metadata_field) != ["signature_def"]:
            raise invalid("metadata_field must be ['signature_def']")
        model, signatures = self.service.metadata(*_spec(request.model_spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(signatures)
        return response


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, service: Service):
        self.service = service

    @_aborts_on_error
    def GetModelStatus(self, request, context):  # noqa: N802
        return self.service.status(*_spec(request.model_spec))


def make_grpc_server(service: Service, host: str, port: int, workers: int = 16) -> tuple[grpc.Server, int]:
    """A started-later gRPC server bound to ``host:port``; returns it and the bound port."""
    size = service.limits.max_request_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)],
        maximum_concurrent_rpcs=workers * 8,
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(service), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(service), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    return server, bound
