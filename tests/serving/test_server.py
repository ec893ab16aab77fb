"""Export → serve → the same scores in-process, over REST and over gRPC (official stubs)."""

import http.client
import json
import os
import shutil
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfshop.data.schema import Schema
from tfshop.errors import ConfigError
from tfshop.export.saved_model import export, write_models_config
from tfshop.pipeline.checks import sample_inputs
from tfshop.serving.batching import BatchingOptions
from tfshop.serving.client import ClientError, connect
from tfshop.serving.limits import Limits
from tfshop.serving.models import ModelManager, ModelSource, read_model_config
from tfshop.serving.server import ModelServer, sources_from_flags
from tfshop.serving.tensors import to_json

ROWS = 8


@pytest.fixture(scope="module")
def exported(small_dataset, trained_mmoe, tmp_path_factory):
    """The quickly trained model exported as version 1, and test rows as raw serving inputs."""
    run, model = tmp_path_factory.mktemp("serving"), trained_mmoe[0]
    inputs = sample_inputs(small_dataset, model.input_names, "test", ROWS)
    base = run / "saved_models"
    version = export(model, Schema.load(small_dataset), base, "shop", warmup=inputs)
    return base / "shop", version, inputs


def serve(model_dir, **options) -> ModelServer:
    options.setdefault("poll_seconds", 0)
    return ModelServer([ModelSource("shop", model_dir)], rest_port=0, grpc_port=0, **options)


def in_process(version_dir, inputs):
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def assert_same(got, expected):
    assert set(got) == set(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6)


def test_rest_and_grpc_give_the_in_process_scores(exported):
    model_dir, version_dir, inputs = exported
    expected = in_process(version_dir, inputs)
    with serve(model_dir) as server:
        for url in (server.rest_url, f"grpc://{server.grpc_target}"):
            with connect(url, "shop") as client:
                assert client.status() == {1: "AVAILABLE"}
                assert_same(client.predict(inputs), expected)
                assert_same(client.predict(inputs, version=1), expected)

        # The official stubs, straight on the channel.
        channel = grpc.insecure_channel(server.grpc_target)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shop"
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        request.output_filter.append("ctr")
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
        assert list(response.outputs) == ["ctr"] and response.model_spec.version.value == 1
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["ctr"]), expected["ctr"], atol=1e-6)

        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata_request.model_spec.name = "shop"
        metadata = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            metadata_request
        )
        signatures = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signatures)
        assert {"serving_default", "predict_examples"} <= set(signatures.signature_def)
        assert set(signatures.signature_def["serving_default"].inputs) == set(inputs)

        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "shop"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        ]

        # REST row format: one object per example; predictions come back one object per row.
        instances = [{k: to_json(v[i]) for k, v in inputs.items()} for i in range(ROWS)]
        body = requests.post(
            f"{server.rest_url}/v1/models/shop:predict", json={"instances": instances}
        ).json()
        ctr = np.array([row["ctr"] for row in body["predictions"]], np.float32)
        np.testing.assert_allclose(ctr, expected["ctr"], atol=1e-6)
        meta = requests.get(f"{server.rest_url}/v1/models/shop/metadata").json()
        assert meta["model_spec"]["version"] == "1"
        assert "serving_default" in meta["metadata"]["signature_def"]["signature_def"]


def test_bad_requests_are_refused_and_no_good_request_is_lost(exported):
    model_dir, version_dir, inputs = exported
    expected = in_process(version_dir, inputs)
    good = {"inputs": {k: to_json(v) for k, v in inputs.items()}}
    base = "/v1/models/shop"
    bad = [
        ("POST", f"{base}:predict", b"{not json", 400, "malformed JSON"),
        (
            "POST",
            f"{base}:predict",
            {"inputs": {**good["inputs"], "price": ["cheap"] * ROWS}},
            400,
            "'price'",
        ),
        (
            "POST",
            f"{base}:predict",
            {"inputs": {k: v for k, v in good["inputs"].items() if k != "item_id"}},
            400,
            "missing input 'item_id'",
        ),
        (
            "POST",
            f"{base}:predict",
            {"inputs": {k: v * 5 for k, v in good["inputs"].items()}},
            400,
            "over the limit",
        ),
        ("POST", f"{base}:predict", {**good, "signature_name": "nope"}, 404, "no signature 'nope'"),
        ("POST", "/v1/models/other:predict", good, 404, "no model named 'other'"),
        ("POST", f"{base}/versions/7:predict", good, 404, "no version 7"),
        ("POST", f"{base}/labels/stable:predict", good, 404, "no version label 'stable'"),
        ("GET", "/v1/models/../../etc/passwd", None, 404, "no such resource"),
        ("GET", "/v1/models/..%2F..%2Fetc", None, 404, "no such resource"),
        ("GET", "/v1/models/..", None, 404, "no model named '..'"),
    ]
    with serve(model_dir, limits=Limits(max_request_rows=ROWS * 2)) as server:
        outcomes, lock = [], threading.Lock()

        def send(method, path, body):
            connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode() if body else None
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            result = (response.status, json.loads(response.read()))
            connection.close()
            with lock:
                outcomes.append((path, body, result))

        jobs = [("POST", f"{base}:predict", good)] * 20 + [(m, p, b) for m, p, b, _, _ in bad] * 2
        threads = [threading.Thread(target=send, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        good_answers = [r for p, b, r in outcomes if b is good and p == f"{base}:predict"]
        assert len(good_answers) == 20 and all(status == 200 for status, _ in good_answers)
        for _, answer in good_answers:
            np.testing.assert_allclose(np.array(answer["outputs"]["ctr"]), expected["ctr"], atol=1e-6)
        for _, path, body, status, message in bad:
            answers = [r for p, b, r in outcomes if p == path and b is body]
            assert len(answers) == 2
            for got_status, answer in answers:
                assert (got_status, message in answer["error"]) == (status, True), (path, answer)

        # gRPC: the wrong dtype is INVALID_ARGUMENT naming the input, and the server carries on.
        with connect(f"grpc://{server.grpc_target}", "shop") as client:
            with pytest.raises(ClientError) as err:
                client.predict({**inputs, "price": inputs["price"].astype(np.float64)})
            assert err.value.code == "INVALID_ARGUMENT" and "'price'" in err.value.message
            assert_same(client.predict(inputs), expected)


def test_hot_reload_under_load_loses_no_request(exported, tmp_path):
    source_dir, _, inputs = exported
    model_dir = tmp_path / "shop"
    shutil.copytree(source_dir / "1", model_dir / "1")
    batching = BatchingOptions(max_batch_size=32, batch_timeout_micros=5000)
    with serve(model_dir, poll_seconds=0.2, batching=batching) as server:
        stop, results, errors = threading.Event(), [], []

        def load(url):
            with connect(url, "shop") as client:
                while not stop.is_set():
                    try:
                        results.append(client.predict(inputs)["ctr"])
                    except Exception as err:  # noqa: BLE001  (counted: the test wants none)
                        errors.append(err)

        clients = [
            threading.Thread(target=load, args=(url,))
            for url in [server.rest_url, f"grpc://{server.grpc_target}"] * 2
        ]
        for thread in clients:
            thread.start()
        with connect(server.rest_url, "shop") as watcher:
            shutil.copytree(model_dir / "1", tmp_path / "staging")
            (tmp_path / "staging").rename(model_dir / "2")
            wait_for(lambda: watcher.status() == {1: "END", 2: "AVAILABLE"})
            served = len(results)
            # A broken version 3 is refused; version 2 keeps serving.
            (model_dir / "3").mkdir()
            (model_dir / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
            wait_for(lambda: watcher.status().get(3) == "END")  # tried again later: LOADING between
            assert {v: s for v, s in watcher.status().items() if v < 3} == {1: "END", 2: "AVAILABLE"}
            error = requests.get(f"{server.rest_url}/v1/models/shop/versions/3").json()
            assert error["model_version_status"][0]["status"]["error_message"]
            wait_for(lambda: len(results) > served + 10)
        stop.set()
        for thread in clients:
            thread.join()
    assert errors == [] and len(results) > 20
    for ctr in results:
        np.testing.assert_allclose(ctr, results[0], atol=1e-6)


def test_model_config_file_with_labels_and_a_version_policy(exported, tmp_path):
    source_dir, _, inputs = exported
    for version in (1, 2, 3):
        shutil.copytree(source_dir / "1", tmp_path / "models" / "shop" / str(version))
    config = tmp_path / "models" / "models.config"
    config.write_text(
        'model_config_list {\n  config {\n    name: "shop"\n    base_path: "shop"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 1 versions: 2 } }\n"
        '    version_labels { key: "stable" value: 1 }\n    version_labels { key: "canary" value: 2 }\n'
        "  }\n}\n"
    )
    sources = read_model_config(config)
    with ModelServer(sources, rest_port=0, grpc_port=0, poll_seconds=0) as server:
        for url in (server.rest_url, f"grpc://{server.grpc_target}"):
            with connect(url, "shop") as client:
                assert client.status() == {1: "AVAILABLE", 2: "AVAILABLE"}
                assert client.predict(inputs, label="stable")["ctr"].shape == (ROWS, 1)
        response = requests.get(f"{server.rest_url}/v1/models/shop/labels/canary/metadata").json()
        assert response["model_spec"]["version"] == "2"


def test_the_exported_models_config_serves_here_as_in_docker(exported, tmp_path):
    """export's models.config names /models/<name> (Docker's mount); read beside the config here."""
    source_dir, _, _ = exported
    shutil.copytree(source_dir / "1", tmp_path / "saved" / "shop" / "1")
    config = write_models_config(tmp_path / "saved")
    assert 'base_path: "/models/shop"' in config.read_text()
    (source,) = sources_from_flags("ignored", None, str(config))
    assert source.name == "shop" and source.base_path == (tmp_path / "saved" / "shop").resolve()
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "models.config"
    shutil.move(config, moved)
    with pytest.raises(ConfigError, match="base path /models/shop is not a folder"):
        sources_from_flags("ignored", None, str(moved))


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_slow_and_idle_clients_are_cut_off_and_extra_connections_get_503(exported):
    """A slowloris client (a request head sent a byte at a time) cannot hold the server's threads."""
    model_dir, _, inputs = exported
    limits = Limits(max_connections=12, read_timeout_seconds=1.0)
    with serve(model_dir, limits=limits) as server:
        threads_before = threading.active_count()
        slow = [socket.create_connection(("127.0.0.1", server.rest_port)) for _ in range(10)]
        idle = [socket.create_connection(("127.0.0.1", server.rest_port)) for _ in range(2)]
        for connection in slow:
            connection.sendall(b"POST /v1/models/shop:predict HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        extra = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
        extra.request("GET", "/v1/models/shop")
        busy = extra.getresponse()
        assert (busy.status, json.loads(busy.read())) == (
            503,
            {"error": "the server is busy: too many open connections"},
        )
        assert threading.active_count() <= threads_before + 12
        cut, started = set(), time.monotonic()
        while len(cut) < len(slow) and time.monotonic() - started < 10:
            for k, connection in enumerate(slow):  # a byte every 0.1 s: never a whole head
                try:
                    connection.sendall(b"X")
                except OSError:
                    cut.add(k)
            time.sleep(0.1)
        assert len(cut) == len(slow) and time.monotonic() - started < 3
        for connection in idle:  # closed by the server: the read sees the end of the stream
            connection.settimeout(5)
            assert connection.recv(1) == b""
        with connect(server.rest_url, "shop") as client:
            assert set(client.predict(inputs)) >= {"ctr", "cvr"}
        for connection in slow + idle:
            connection.close()


def test_a_version_seen_half_copied_is_loaded_once_complete(exported, tmp_path):
    """The folder's own time stamp does not change when files land in its subfolders."""
    source_dir, _, inputs = exported
    half = tmp_path / "shop" / "1"
    half.mkdir(parents=True)
    shutil.copy(source_dir / "1" / "saved_model.pb", half)
    (half / "variables").mkdir()
    manager = ModelManager([ModelSource("shop", tmp_path / "shop")])
    manager.poll()
    assert manager.states("shop")[1].state == "END" and manager.states("shop")[1].attempts == 1
    stamp = half.stat().st_mtime
    shutil.copytree(source_dir / "1" / "variables", half / "variables", dirs_exist_ok=True)
    for extra in ("assets", "assets.extra"):
        if (source_dir / "1" / extra).is_dir():
            shutil.copytree(source_dir / "1" / extra, half / extra)
    os.utime(half, (stamp, stamp))
    wait_for(lambda: manager.poll() or manager.states("shop")[1].state == "AVAILABLE", timeout=30)
    assert set(manager.resolve("shop").predict("serving_default", inputs, ROWS)) >= {"ctr"}
    manager.stop()
