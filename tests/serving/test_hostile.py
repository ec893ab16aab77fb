"""A hostile client: declared shapes that would take the machine's memory, values no model
should see, and methods the API does not have are refused with a 4xx naming the problem."""

import http.client
import json
import resource

import grpc
import numpy as np
import orjson
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.test_server import exported, serve  # noqa: F401  (the module's served export)
from tfshop.serving.limits import Limits
from tfshop.serving.tensors import to_json


@pytest.fixture(scope="module")
def server(exported):  # noqa: F811
    model_dir, _, inputs = exported
    with serve(model_dir, limits=Limits(max_request_rows=64)) as running:
        yield running, inputs


def rest(server, method, body: bytes | None, path="/v1/models/shop:predict"):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = (response.status, json.loads(response.read()))
    connection.close()
    return answer


def columns(inputs, **replaced):
    return {"inputs": {**{k: to_json(v) for k, v in inputs.items()}, **replaced}}


def test_declared_shapes_are_checked_before_any_tensor_is_made(server):
    running, inputs = server
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.grpc_target))
    name = next(n for n, v in inputs.items() if v.dtype == np.float32)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the server runs in this process
    for size in (2**29, 2**40):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shop"
        proto = request.inputs[name]
        proto.dtype, proto.float_val[:] = 1, [1.0]  # "fill this shape with 1.0"
        proto.tensor_shape.dim.add().size = size
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"batch of {size} rows is over the limit of 64" in refused.value.details()
    # 2^29 floats made would take 2 GiB: the process's peak memory must not have moved
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 256 << 10
    request.inputs[name].tensor_shape.dim[0].size = 2
    request.inputs[name].tensor_shape.dim.add().size = 2**40
    with pytest.raises(
        grpc.RpcError, match=r"shape \[2, 1099511627776\] (does not fit|asks for more values)"
    ):
        stub.Predict(request, timeout=30)
    del request.inputs[name].tensor_shape.dim[:]
    request.inputs[name].tensor_shape.dim.add().size = 1
    request.inputs[name].dtype = 9999
    with pytest.raises(grpc.RpcError, match=r"dtype 9999 \(unknown\) given, the signature takes float"):
        stub.Predict(request, timeout=30)
    rows = {"instances": [{name: 1.0}] * 100_000}
    assert rest(running, "POST", json.dumps(rows).encode()) == (
        400,
        {"error": "input 'instances': batch of 100000 rows is over the limit of 64"},
    )


def test_values_no_model_should_see_are_400s_naming_the_input(server):
    running, inputs = server
    name = next(n for n, v in inputs.items() if v.dtype == np.float32)
    text = next(n for n, v in inputs.items() if v.dtype == object and v.ndim == 1)
    rows = len(inputs[name])
    cases = {
        b"Infinity": "an infinite value",
        b"1e400": "an infinite value",
        str(10**300).encode(): "beyond float32",
        b"1" * 5000: "malformed JSON",
    }
    good = json.dumps(columns(inputs)).encode()
    for value, message in cases.items():
        body = good.replace(
            json.dumps(to_json(inputs[name])).encode(), b"[" + b", ".join([value] * rows) + b"]"
        )
        status, answer = rest(running, "POST", body)
        assert status == 400 and message in answer["error"], (value[:20], answer)
    missing = good.replace(
        json.dumps(to_json(inputs[name])).encode(), b"[" + b", ".join([b"NaN"] * rows) + b"]"
    )
    connection = http.client.HTTPConnection("127.0.0.1", running.rest_port, timeout=60)
    connection.request("POST", "/v1/models/shop:predict", body=missing)
    answer = connection.getresponse()
    assert (
        answer.status == 200 and orjson.loads(answer.read())["outputs"]
    )  # NaN is a missing number; strict JSON back
    surrogate = json.dumps(columns(inputs, **{text: ["\ud800"] * rows})).encode()
    status, answer = rest(running, "POST", surrogate)
    assert status == 400 and "error" in answer
    deep = json.dumps(
        columns(inputs, **{name: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1.0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})
    )
    assert rest(running, "POST", deep.encode())[0] == 400
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        assert rest(running, method, b"{}") == (405, {"error": f"{method} is not served: use GET or POST"})
