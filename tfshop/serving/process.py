"""``tfshop serve`` in a child process on free loopback ports, for the demo and the benchmarks."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

from tfshop.errors import TfshopError

_READY = re.compile(r"serving REST on (http://\S+) and gRPC on (\S+)")


@contextlib.contextmanager
def server_process(model_base_path: Path, model_name: str, log_file: Path, *flags: str):
    """Yields ``(rest_url, grpc_url)`` once the server listens; stops it (SIGTERM) on exit."""
    command = [
        sys.executable, "-m", "tfshop.cli", "serve",
        "--model_name", model_name, "--model_base_path", str(model_base_path),
        "--port", "0", "--rest_api_port", "0", *flags,
    ]  # fmt: skip
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            ready = None
            for line in process.stdout:
                ready = _READY.search(line)
                if ready:
                    break
            if not ready:
                process.wait()
                tail = log_file.read_text().strip().splitlines()[-1:] or ["no output"]
                raise TfshopError(f"the server did not start (exit {process.returncode}): {tail[0]}")
            yield ready[1], f"grpc://{ready[2]}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
