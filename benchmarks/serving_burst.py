"""Mixed burst: valid and malformed REST requests from 8 clients while a new version is swapped in.

``--data`` is a model base path (``saved_models/<name>``) or one version directory. Its newest
version is copied into a fresh base path as version 1 and served by ``tfshop serve`` in a child
process (polling every second). Eight client threads then send requests back to back for 60 s
(15 s with ``--quick``): every third request of a client is valid (32 real rows, the export's
warm-up records), the others cycle through malformed ones (broken JSON, text where a number
belongs, an unknown model, an unknown signature, a body over ``--max_request_bytes``, a request
with neither ``instances`` nor ``inputs``). A third of the way in, version 2 is copied next to
version 1 and renamed into place, so the server loads it and swaps it in under load.

Reported: valid requests sent and lost (anything but 200 or no answer within 30 s), the status
codes of each kind of bad request (4xx is right; 5xx or no answer is a failure), the valid
requests' p50/p99, and the server's resident memory before and after.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import psutil
import requests
from common import parser, write_result
from serving_latency import batch_of, version_dir, warmup_rows

from tfshop.serving.client import connect
from tfshop.serving.process import server_process
from tfshop.serving.tensors import to_json

CLIENTS = 8
MAX_REQUEST_BYTES = 1 << 20
TIMEOUT = 30.0


def bad_requests(url: str, name: str, valid: dict) -> dict[str, tuple[str, bytes]]:
    """Kind → (URL, body) of each malformed request."""
    predict = f"{url}/v1/models/{name}:predict"
    wrong_type = {**valid, "inputs": {**valid["inputs"], "price": ["cheap"] * len(valid["inputs"]["price"])}}
    return {
        "broken_json": (predict, b'{"inputs": {"price": [1.0,'),
        "wrong_dtype": (predict, orjson.dumps(wrong_type)),
        "unknown_model": (f"{url}/v1/models/no_such_model:predict", orjson.dumps(valid)),
        "unknown_signature": (predict, orjson.dumps({**valid, "signature_name": "nope"})),
        "oversize_body": (predict, b" " * (MAX_REQUEST_BYTES + 1)),
        "no_inputs": (predict, b'{"signature_name": "serving_default"}'),
    }


def client_loop(url: str, name: str, valid_body: bytes, bad: dict, until: float, record: dict) -> None:
    session, kinds, sent = requests.Session(), list(bad), 0
    headers = {"Content-Type": "application/json"}
    while time.perf_counter() < until:
        kind = "valid" if sent % 3 == 0 else kinds[(sent // 3 + sent) % len(kinds)]
        target, body = (f"{url}/v1/models/{name}:predict", valid_body) if kind == "valid" else bad[kind]
        started = time.perf_counter()
        try:
            status = session.post(target, data=body, headers=headers, timeout=TIMEOUT).status_code
        except requests.RequestException as err:
            status = f"no answer ({type(err).__name__})"
            session = requests.Session()
        with record["lock"]:
            record["status"][kind][status] += 1
            if kind == "valid" and status == 200:
                record["latency"].append(time.perf_counter() - started)
        sent += 1


def swap_in(base: Path, source: Path, at: float, record: dict) -> None:
    """Copies the export as version 2 beside version 1, then renames it into place."""
    time.sleep(max(0.0, at - time.perf_counter()))
    staging = base / ".incoming-2"
    shutil.copytree(source, staging)
    staging.rename(base / "2")
    record["swapped_at_s"] = round(time.perf_counter() - record["began"], 1)


def server_memory_mb() -> float:
    """Resident memory of this process's ``tfshop serve`` child."""
    servers = [p for p in psutil.Process().children(recursive=True) if "serve" in " ".join(p.cmdline())]
    return round(sum(p.memory_info().rss for p in servers) / 2**20, 1)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    started = time.time()
    export = version_dir(args.data.resolve())
    seconds = 15.0 if args.quick else 60.0
    valid = {"inputs": {k: to_json(v) for k, v in batch_of(warmup_rows(export), 32).items()}}
    with tempfile.TemporaryDirectory() as workdir:
        base = Path(workdir) / "model"
        shutil.copytree(export, base / "1")
        flags = ["--file_system_poll_wait_seconds", "1", "--max_request_bytes", str(MAX_REQUEST_BYTES)]
        with server_process(base, "burst", Path(workdir) / "server.log", *flags) as (url, _):
            with connect(url, "burst") as probe:
                probe.wait_until_available()
                for _ in range(5):
                    probe.predict(batch_of(warmup_rows(export), 32))
            memory_before = server_memory_mb()
            record = {"lock": threading.Lock(), "status": {}, "latency": [], "began": time.perf_counter()}
            bad = bad_requests(url, "burst", valid)
            record["status"] = {kind: Counter() for kind in ["valid", *bad]}
            until = record["began"] + seconds
            threads = [
                threading.Thread(
                    target=client_loop, args=(url, "burst", orjson.dumps(valid), bad, until, record)
                )
                for _ in range(CLIENTS)
            ]
            threads.append(
                threading.Thread(target=swap_in, args=(base, export, record["began"] + seconds / 3, record))
            )
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            memory_after = server_memory_mb()
            with connect(url, "burst") as probe:
                states = probe.status()
    statuses = {
        kind: {str(code): n for code, n in counts.items()} for kind, counts in record["status"].items()
    }
    valid_sent = sum(record["status"]["valid"].values())
    latency = np.array(record["latency"]) * 1000
    bad_failures = sum(
        n
        for kind, counts in record["status"].items()
        if kind != "valid"
        for code, n in counts.items()
        if not (isinstance(code, int) and 400 <= code < 500)
    )
    write_result(
        args.out,
        f"{export}: {CLIENTS} clients for {seconds:g}s, one request in three valid (32 rows), the others "
        "malformed in turn; version 2 copied in and renamed into place at a third of the time",
        started,
        valid_sent=valid_sent,
        valid_lost=valid_sent - record["status"]["valid"][200],
        bad_sent=sum(sum(c.values()) for k, c in record["status"].items() if k != "valid"),
        bad_not_4xx=bad_failures,
        statuses=statuses,
        p50_ms=round(float(np.percentile(latency, 50)), 2),
        p99_ms=round(float(np.percentile(latency, 99)), 2),
        server_rss_mb_before=memory_before,
        server_rss_mb_after=memory_after,
        swapped_at_s=record.get("swapped_at_s"),
        versions_at_end=states,
    )


if __name__ == "__main__":
    main()
