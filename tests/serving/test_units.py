"""Request decoding, batching and the export contract, without a server."""

import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tfshop.errors import ConfigError, TfshopError
from tfshop.export.contract import check_contract
from tfshop.serving.batching import Batcher, BatchingOptions
from tfshop.serving.client import Client, ClientError
from tfshop.serving.deadline import Deadline
from tfshop.serving.models import CHUNK_ROWS, LoadedVersion
from tfshop.serving.status import ServingError
from tfshop.serving.tensors import SignatureSpec, from_json, rows_from_json, to_json

SPEC = SignatureSpec(
    "serving_default",
    {
        "item_id": tf.TensorSpec(None, tf.string, "item_id"),
        "price": tf.TensorSpec(None, tf.float32, "price"),
        "hist": tf.TensorSpec([None, None], tf.string, "hist"),
    },
    {"ctr": tf.TensorSpec([None, 1], tf.float32, "ctr")},
)


def refused(call, *fragments):
    with pytest.raises(ServingError) as err:
        call()
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    for fragment in fragments:
        assert fragment in err.value.message
    return err.value


def _nested(depth: int):
    value = 1.0
    for _ in range(depth):
        value = [value]
    return value


def test_json_values_become_typed_arrays():
    strings = from_json("hist", [["a", {"b64": "/w=="}], ["é", ""]], tf.string)
    assert strings.shape == (2, 2) and strings[0, 1] == b"\xff" and strings[1, 0] == "é".encode()
    assert to_json(strings) == [["a", {"b64": "/w=="}], ["é", ""]]
    floats = from_json("price", [1, 2.5, float("nan")], tf.float32)
    assert floats.dtype == np.float32 and np.isnan(floats[2])
    refused(lambda: from_json("price", ["1.5"], tf.float32), "'price'", "text", "float32")
    refused(lambda: from_json("price", [True], tf.float32), "'price'", "boolean")
    refused(lambda: from_json("n", [2.5], tf.int64), "'n'", "int64")
    refused(lambda: from_json("n", [2**70], tf.int64), "'n'", "out of range")
    refused(lambda: from_json("hist", [["a"], ["a", "b"]], tf.string), "'hist'", "ragged")
    refused(lambda: from_json("hist", [{"b64": "%%"}], tf.string), "'hist'", "base64")
    refused(lambda: from_json("price", [1.0, float("inf")], tf.float32), "'price'", "infinite")
    refused(lambda: from_json("price", [1e300], tf.float32), "'price'", "beyond float32")
    refused(lambda: from_json("price", _nested(40), tf.float32), "nested")
    refused(lambda: rows_from_json({"instances": [{"price": 1.0}] * 10}, SPEC, 9), "10 rows", "limit of 9")


def test_row_and_columnar_requests_agree():
    rows = {"instances": [{"item_id": "i1", "price": 1.0, "hist": ["a", "b"]}] * 3}
    columns = {"inputs": {"item_id": ["i1"] * 3, "price": [1.0] * 3, "hist": [["a", "b"]] * 3}}
    by_row, by_column = rows_from_json(rows, SPEC, 9), rows_from_json(columns, SPEC, 9)
    for name in SPEC.inputs:
        np.testing.assert_array_equal(by_row[name], by_column[name])
    assert SPEC.check(by_row, max_rows=3) == 3


def test_bad_requests_name_the_input():
    good = {"item_id": ["i1"], "price": [1.0], "hist": [["a"]]}
    refused(lambda: rows_from_json({"inputs": good, "instances": []}, SPEC, 9), "exactly one")
    refused(lambda: rows_from_json({"inputs": {**good, "colour": ["red"]}}, SPEC, 9), "'colour'")
    refused(lambda: rows_from_json({"instances": [{"item_id": "i1"}, {"price": 1.0}]}, SPEC, 9), "missing")
    only_two = {"inputs": {"item_id": ["i"], "price": [1.0]}}
    refused(lambda: SPEC.check(rows_from_json(only_two, SPEC, 9), 9), "missing input 'hist'")
    arrays = rows_from_json({"inputs": {**good, "price": [1.0, 2.0]}}, SPEC, 9)
    refused(lambda: SPEC.check(arrays, 9), "batch size")
    refused(
        lambda: SPEC.check(rows_from_json({"inputs": good}, SPEC, 9), max_rows=0),
        "'item_id'",
        "over the limit",
    )
    arrays = rows_from_json({"inputs": {**good, "hist": ["a"]}}, SPEC, 9)
    refused(lambda: SPEC.check(arrays, 9), "'hist'", "shape")


def test_batcher_merges_concurrent_requests_and_splits_the_answers():
    calls = []

    def run(inputs, deadline):
        calls.append(len(inputs["x"]))
        if (inputs["x"] == 3).any():
            raise ValueError("request 3 is bad")
        return {"double": inputs["x"] * 2}

    batcher = Batcher(
        run, BatchingOptions(max_batch_size=64, batch_timeout_micros=200_000, num_batch_threads=1)
    )
    results, start = {}, threading.Barrier(8)

    def client(i):
        start.wait()
        try:
            results[i] = batcher.submit({"x": np.full((i + 1, 2), i, np.float32)}, i + 1)
        except ValueError as err:
            results[i] = err

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert len(calls) < 16  # merged (a failed merge is rerun request by request)
    assert isinstance(results.pop(3), ValueError)  # the bad request fails alone
    for i, out in results.items():
        np.testing.assert_array_equal(out["double"], np.full((i + 1, 2), 2 * i))
    # Once closed, requests are still answered (alone).
    np.testing.assert_array_equal(batcher.submit({"x": np.ones((1, 2))}, 1)["double"], [[2, 2]])


def test_batcher_refuses_when_the_queue_is_full():
    release = threading.Event()

    def run(inputs, deadline):
        release.wait()
        return {"y": inputs["x"]}

    batcher = Batcher(run, BatchingOptions(max_batch_size=1, max_enqueued_batches=2, num_batch_threads=1))
    outcomes = []

    def client(x):
        try:
            outcomes.append(batcher.submit({"x": np.array([x])}, 1)["y"][0])
        except ServingError as err:
            outcomes.append(err.message)

    first = threading.Thread(target=client, args=(1,))
    first.start()
    while batcher._queue.qsize():  # the worker holds the first request
        pass
    waiting = [threading.Thread(target=client, args=(x,)) for x in (2, 3)]
    for t in waiting:
        t.start()
    while batcher._queue.qsize() < 2:
        pass
    with pytest.raises(ServingError) as full:
        batcher.submit({"x": np.array([4])}, 1)
    assert full.value.code == grpc.StatusCode.UNAVAILABLE
    release.set()
    for t in [first, *waiting]:
        t.join()
    batcher.close()
    assert sorted(outcomes) == [1, 2, 3]


def test_a_request_past_its_deadline_or_given_up_is_answered_at_once_and_never_run():
    """One batch thread busy for a second: a request with a 0.2 s deadline gets DEADLINE_EXCEEDED
    (HTTP 504) after about 0.2 s, one whose client goes away CANCELLED, and neither is run."""
    release, ran = threading.Event(), []

    def run(inputs, deadline):
        ran.append(int(inputs["x"][0]))
        release.wait(timeout=1.0)
        return {"y": inputs["x"]}

    batcher = Batcher(run, BatchingOptions(max_batch_size=1, num_batch_threads=1))
    busy = threading.Thread(target=batcher.submit, args=({"x": np.array([1])}, 1))
    busy.start()
    while not ran:
        pass
    started = time.monotonic()
    with pytest.raises(ServingError) as late:
        batcher.submit({"x": np.array([2])}, 1, Deadline(0.2))
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and late.value.http_status == 504
    assert 0.2 <= time.monotonic() - started < 0.8
    gone = threading.Event()
    threading.Timer(0.2, gone.set).start()  # the client goes away
    with pytest.raises(ServingError) as cancelled:
        batcher.submit({"x": np.array([3])}, 1, Deadline(None, lambda: not gone.is_set()))
    assert cancelled.value.code == grpc.StatusCode.CANCELLED
    release.set()
    busy.join()
    batcher.close()
    assert ran == [1]


def test_a_large_request_stops_between_chunks_once_its_deadline_passed():
    calls = []

    class Slow:
        def _call(self, signature, inputs):
            calls.append(len(inputs["x"]))
            time.sleep(0.1)
            return {"y": inputs["x"] * 2}

    rows = 10 * CHUNK_ROWS + 3
    x = np.arange(rows, dtype=np.float32)
    whole = LoadedVersion._call_in_chunks(Slow(), "serving_default", {"x": x}, Deadline(None))
    np.testing.assert_array_equal(whole["y"], 2 * x)
    assert calls == [CHUNK_ROWS] * 10 + [3]
    calls.clear()
    with pytest.raises(ServingError, match=r"deadline \(0.25 s\) passed"):
        LoadedVersion._call_in_chunks(Slow(), "serving_default", {"x": x}, Deadline(0.25))
    assert 2 <= len(calls) <= 4


def test_batching_parameters_file(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }\n")
    assert BatchingOptions.from_file(path) == BatchingOptions(max_batch_size=16, batch_timeout_micros=500)
    path.write_text("max_batch_size { value: 16 }\npad_variable_length_inputs: true\n")
    with pytest.raises(ConfigError, match="pad_variable_length_inputs"):
        BatchingOptions.from_file(path)


def test_contract_refuses_python_callbacks(tmp_path):
    class Scorer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.py_function(lambda v: v * 2, [x], tf.float32)}

    module = Scorer()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    with pytest.raises(TfshopError, match="PyFunc"):
        check_contract(tmp_path / "1")


def test_server_registers_tensorflow_text_ops():
    # The server runs in its own process: it must register TF Text's ops before loading a model
    # whose tokenizer uses them, as stock TF Serving does.
    script = (
        "import tfshop.serving.models\n"
        "from tensorflow.python.framework import op_def_registry\n"
        "for op in ('NormalizeUTF8', 'RegexSplitWithOffsets', 'WordpieceTokenizeWithOffsets'):\n"
        "    assert op_def_registry.get(op), op\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-500:]


class _FixedStatus(Client):
    def __init__(self, states):
        super().__init__("shop", timeout=1)
        self.states = states

    def predict(self, inputs, signature_name="serving_default", version=None, label=None):
        raise NotImplementedError

    def status(self, version=None):
        return self.states

    def close(self):
        pass


def test_waiting_for_a_version_that_failed_to_load_fails_at_once():
    client = _FixedStatus({1: "AVAILABLE", 2: "END"})
    assert client.wait_until_available() == 1
    assert client.wait_until_available(1) == 1
    with pytest.raises(ClientError, match="version 2 is END"):
        client.wait_until_available(2, timeout=60)
    with pytest.raises(ClientError, match="version 3 not available"):
        _FixedStatus({1: "LOADING"}).wait_until_available(3, timeout=0.3)
