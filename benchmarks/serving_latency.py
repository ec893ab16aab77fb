"""Serving latency and throughput over loopback: REST and gRPC, with and without server batching.

``--data`` is a model base path (``saved_models/<name>``: its newest version is served) or one
version directory. Requests carry real rows, the export's warm-up records (validation rows),
tiled to the batch size. For each protocol, server batching off/on, batch size (1, 32, 256) and
number of concurrent clients (1, 8), every client thread sends requests back to back through
``tfshop.serving.client`` for a fixed time; latency percentiles are over every request and
throughput counts rows per second. The baseline calls the SavedModel's ``serving_default`` in
this process on the same arrays; ``overhead_ratio`` is served p50 / in-process p50 with one
client. ``alternating_batch_32`` measures the same at batch 32 with one client that calls
in-process, REST and gRPC in turn, so that the machine's load shifts all three alike. Clients
and server share the machine's cores, as they do in a one-box deployment.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import parser, write_result

from tfshop.serving.client import connect
from tfshop.serving.process import server_process

BATCHES = (1, 32, 256)
CLIENTS = (1, 8)
BATCHING_PARAMETERS = """\
max_batch_size { value: 512 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 16 }
num_batch_threads { value: 2 }
"""


def version_dir(data: Path) -> Path:
    if (data / "saved_model.pb").is_file():
        return data
    versions = [p for p in data.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    if not versions:
        raise SystemExit(f"{data}: no SavedModel and no integer version directory with one")
    return max(versions, key=lambda p: int(p.name))


def warmup_rows(export: Path) -> dict[str, np.ndarray]:
    """The real rows of the export's warm-up requests, concatenated."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = export / "assets.extra" / "tf_serving_warmup_requests"
    parts: dict[str, list[np.ndarray]] = {}
    for record in tf.data.TFRecordDataset(str(path)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        for name, proto in request.inputs.items():
            parts.setdefault(name, []).append(tf.make_ndarray(proto))
    if not parts:
        raise SystemExit(f"{path}: no warm-up requests to take rows from")
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def batch_of(rows: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    available = len(next(iter(rows.values())))
    index = np.arange(size) % available
    return {name: array[index] for name, array in rows.items()}


def measure(make_call, clients: int, seconds: float, rows_per_call: int) -> dict:
    """Each of ``clients`` threads calls ``make_call()`` once, then its result back to back."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(mine: list[float]) -> None:
        call = make_call()
        for _ in range(3):  # warm connections and caches, not counted
            call()
        start.wait()
        deadline = time.perf_counter() + seconds
        while (now := time.perf_counter()) < deadline:
            call()
            mine.append(time.perf_counter() - now)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in latencies]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = np.array([x for mine in latencies for x in mine]) * 1000
    return {
        "p50_ms": round(float(np.percentile(every, 50)), 3),
        "p95_ms": round(float(np.percentile(every, 95)), 3),
        "p99_ms": round(float(np.percentile(every, 99)), 3),
        "requests_per_sec": round(len(every) / elapsed, 1),
        "examples_per_sec": round(len(every) * rows_per_call / elapsed, 1),
        "requests": len(every),
    }


def in_process(export: Path, requests: dict[int, dict], seconds: float) -> dict:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the text ops an export with a text encoder uses)

    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    cells = {}
    for size, inputs in requests.items():
        tensors = {name: tf.constant(array) for name, array in inputs.items()}
        for clients in CLIENTS:
            cell = measure(lambda tensors=tensors: lambda: signature(**tensors), clients, seconds, size)
            cells[f"batch_{size}/clients_{clients}"] = cell
            print(f"   in_process batch {size:3d} clients {clients}: {cell}")
    return cells


def served(export: Path, requests: dict[int, dict], seconds: float, workdir: Path, batching: bool) -> dict:
    flags = ["--file_system_poll_wait_seconds", "0"]
    if batching:
        parameters = workdir / "batching.txt"
        parameters.write_text(BATCHING_PARAMETERS)
        flags += ["--enable_batching", "--batching_parameters_file", str(parameters)]
    name, version = export.parent.name, int(export.name)
    log = workdir / f"server{'_batching' if batching else ''}.log"
    cells: dict[str, dict] = {}
    with server_process(export.parent, name, log, *flags) as urls:
        for url in urls:
            protocol = url.split(":")[0]
            with connect(url, name) as probe:
                probe.wait_until_available()
            for size, inputs in requests.items():
                for clients in CLIENTS:
                    opened = []

                    def make_call(inputs=inputs, url=url, opened=opened):
                        client = connect(url, name)
                        opened.append(client)
                        return lambda: client.predict(inputs, version=version)

                    key = f"{protocol}{'_batching' if batching else ''}"
                    cell = measure(make_call, clients, seconds, size)
                    for client in opened:
                        client.close()
                    cells.setdefault(key, {})[f"batch_{size}/clients_{clients}"] = cell
                    print(f"{key:>13} batch {size:3d} clients {clients}: {cell}")
    return cells


def alternating(export: Path, inputs: dict, seconds: float, workdir: Path) -> dict:
    """One client calling in-process, over REST and over gRPC in turn, request by request, so
    that the machine's load shifts all three alike: the fairest overhead ratio."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    tensors = {name: tf.constant(array) for name, array in inputs.items()}
    name, version = export.parent.name, int(export.name)
    flags = ["--file_system_poll_wait_seconds", "0"]
    with server_process(export.parent, name, workdir / "server_alternating.log", *flags) as urls:
        clients = {url.split(":")[0]: connect(url, name) for url in urls}
        calls = {"in_process": lambda: signature(**tensors)}
        for key, client in clients.items():
            client.wait_until_available()
            calls[key] = lambda client=client: client.predict(inputs, version=version)
        times: dict[str, list[float]] = {key: [] for key in calls}
        for call in calls.values():
            for _ in range(5):
                call()
        deadline = time.perf_counter() + seconds * len(calls)
        while time.perf_counter() < deadline:
            for key, call in calls.items():
                began = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - began)
        for client in clients.values():
            client.close()
    base = float(np.percentile(times["in_process"], 50))
    cells = {}
    for key, values in times.items():
        cells[key] = {
            "p50_ms": round(float(np.percentile(values, 50)) * 1000, 3),
            "p99_ms": round(float(np.percentile(values, 99)) * 1000, 3),
            "requests": len(values),
            "x_in_process_p50": round(float(np.percentile(values, 50)) / base, 2),
        }
        print(f"alternating {key:>10}: {cells[key]}")
    return cells


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    started = time.time()
    export = version_dir(args.data.resolve())
    rows = warmup_rows(export)
    requests = {size: batch_of(rows, size) for size in BATCHES}
    seconds = 2.0 if args.quick else 8.0
    runs = {"in_process": in_process(export, requests, seconds)}
    with tempfile.TemporaryDirectory() as workdir:
        for batching in (False, True):
            runs.update(served(export, requests, seconds, Path(workdir), batching))
        alternate = alternating(export, requests[32], seconds * 2, Path(workdir))
    overhead = {
        f"{key}/batch_{size}": round(
            runs[key][f"batch_{size}/clients_1"]["p50_ms"]
            / runs["in_process"][f"batch_{size}/clients_1"]["p50_ms"],
            2,
        )
        for key in runs
        if key != "in_process"
        for size in BATCHES
    }
    write_result(
        args.out,
        f"{export}: {len(next(iter(rows.values())))} real rows tiled to batches {list(BATCHES)}; "
        f"{list(CLIENTS)} concurrent clients, {seconds:g}s of back-to-back requests per cell; "
        "server batching: max_batch_size 512, batch_timeout_micros 2000, 2 batch threads",
        started,
        p50_ms=runs["grpc"]["batch_1/clients_1"]["p50_ms"],
        examples_per_sec=max(
            cell["examples_per_sec"] for key in runs if key != "in_process" for cell in runs[key].values()
        ),
        overhead_ratio=overhead,
        alternating_batch_32=alternate,
        runs=runs,
    )


if __name__ == "__main__":
    main()
