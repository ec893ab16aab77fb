"""A hostile client and an impatient operator: declared shapes that would take the machine's
memory, values no model should see and methods the API does not have are refused with a 4xx
naming the problem; requests past their deadline or given up are answered and never run; SIGTERM
under load cuts off no request that got through."""

import collections
import http.client
import json
import resource
import signal
import threading
import time

import grpc
import numpy as np
import orjson
import psutil
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.test_server import exported, serve  # noqa: F401  (the module's served export)
from tfshop.serving.batching import BatchingOptions
from tfshop.serving.limits import Limits
from tfshop.serving.process import server_process
from tfshop.serving.tensors import fill_proto, to_json


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


def grpc_request(inputs) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "shop"
    for name, value in inputs.items():
        fill_proto(request.inputs[name], value)
    return request


def test_requests_past_their_deadline_or_given_up_are_answered_and_never_run(exported, monkeypatch):  # noqa: F811
    """The batching queue holds each request 2 s: REST's 0.5 s limit gives 504, a gRPC deadline
    DEADLINE_EXCEEDED, a cancelled call CANCELLED, each long before the batch would run, and the
    model never sees them; a patient request is still answered."""
    model_dir, _, inputs = exported
    batching = BatchingOptions(batch_timeout_micros=2_000_000, max_batch_size=1024)
    limits = Limits(request_timeout_seconds=0.5)
    with serve(model_dir, batching=batching, limits=limits) as running:
        model, calls = running.manager.resolve("shop"), []
        real_call = model._call
        monkeypatch.setattr(model, "_call", lambda *a: calls.append(a) or real_call(*a))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.grpc_target))
        request = grpc_request(inputs)
        started = time.monotonic()
        status, answer = rest(running, "POST", json.dumps(columns(inputs)).encode())
        assert status == 504 and "deadline (0.5 s) passed" in answer["error"]
        assert time.monotonic() - started < 1.5
        with pytest.raises(grpc.RpcError) as late:
            stub.Predict(request, timeout=0.5)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        given_up = stub.Predict.future(request)
        time.sleep(0.3)
        given_up.cancel()
        answered = stub.Predict(request, timeout=30)  # waits out the 2 s batch window
        assert set(answered.outputs) >= {"ctr", "cvr"}
        assert len(calls) == 1  # only the patient request reached the model
        assert running.service.limits.request_timeout_seconds == 0.5


def test_sigterm_under_load_cuts_off_no_request_that_got_through(exported, tmp_path):  # noqa: F811
    """REST clients on kept-alive and on fresh connections and gRPC clients keep asking while
    SIGTERM arrives. Each request gets its scores, a 503 / UNAVAILABLE saying the server stops,
    or a refused connection; none is cut off mid-way. The requests waiting in the batching queue
    at the signal are answered, and the server exits 0 within its grace period."""
    model_dir, _, inputs = exported
    parameters = tmp_path / "batching.txt"
    parameters.write_text("batch_timeout_micros { value: 500000 }\nmax_batch_size { value: 1024 }\n")
    flags = ["--enable_batching", "--batching_parameters_file", str(parameters)]
    flags += ["--shutdown_grace_seconds", "5"]
    body = json.dumps(columns(inputs)).encode()
    answered_at, outcomes, failures, signalled = [], collections.Counter(), [], [float("inf")]

    def rest_client(url, fresh_connections):
        session = requests.Session()
        while True:
            post = requests.post if fresh_connections else session.post
            try:
                response = post(url, data=body, timeout=30)
            except requests.ConnectionError as err:
                if "Failed to establish a new connection" in str(err):  # the request never went out
                    outcomes["refused"] += 1
                else:
                    failures.append(f"{fresh_connections} {time.monotonic() - signalled[0]:.3f} {err!r}")
                return
            if response.status_code == 200 and {"ctr", "cvr"} <= set(response.json()["outputs"]):
                answered_at.append(time.monotonic())
            elif response.status_code == 503 and "shutting down" in response.json()["error"]:
                outcomes[503] += 1
                return
            else:
                failures.append(f"{response.status_code}: {response.text[:200]}")
                return

    def grpc_client(target):
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        while True:
            try:
                stub.Predict(grpc_request(inputs), timeout=30)
                answered_at.append(time.monotonic())
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.UNAVAILABLE:
                    outcomes["unavailable"] += 1
                else:
                    failures.append(f"{err.code()}: {err.details()}")
                return

    with server_process(model_dir, "shop", tmp_path / "server.log", *flags) as (rest_url, grpc_url):
        url = f"{rest_url}/v1/models/shop:predict"
        serving = ["-m", "tfshop.cli", "serve"]
        (server,) = [p for p in psutil.Process().children() if p.cmdline()[1:4] == serving]
        clients = [threading.Thread(target=rest_client, args=(url, k % 2 == 0)) for k in range(10)]
        clients += [threading.Thread(target=grpc_client, args=(grpc_url[7:],)) for _ in range(3)]
        for client in clients:
            client.start()
        time.sleep(2.0)
        signalled[0] = time.monotonic()
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=30)
        stopped_after = time.monotonic() - signalled[0]
        for client in clients:
            client.join(timeout=60)
    assert exit_code == 0 and failures == [], (exit_code, failures)
    assert sum(outcomes.values()) == len(clients)  # each ended on a clean refusal
    assert len(answered_at) >= len(clients) and any(t > signalled[0] for t in answered_at)
    assert stopped_after < 5 + 5, stopped_after
