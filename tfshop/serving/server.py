"""The embedded model server: model manager + REST + gRPC, started and stopped together.

``tfshop serve`` takes TF Serving's flag names (``--model_name``, ``--model_base_path``,
``--model_config_file``, ``--port``, ``--rest_api_port``, ``--file_system_poll_wait_seconds``,
``--enable_batching``, ``--batching_parameters_file``), so scripts written for
``tensorflow_model_server`` run unchanged. It binds to 127.0.0.1 unless ``--host`` says
otherwise; port 0 picks a free port.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from tfshop.errors import ConfigError
from tfshop.serving.batching import BatchingOptions
from tfshop.serving.grpc_api import make_grpc_server
from tfshop.serving.limits import Limits
from tfshop.serving.models import ModelManager, ModelSource, read_model_config
from tfshop.serving.rest import make_rest_server
from tfshop.serving.service import Service

log = logging.getLogger(__name__)


class ModelServer:
    """Serves ``sources`` over REST and gRPC until ``stop``; usable as a context manager."""

    def __init__(
        self,
        sources: list[ModelSource],
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        batching: BatchingOptions | None = None,
        limits: Limits | None = None,
        poll_seconds: float = 1.0,
        grace_seconds: float = 5.0,
    ):
        self.manager = ModelManager(sources, batching)
        self.service = Service(self.manager, limits or Limits())
        self.host, self.poll_seconds, self.grace_seconds = host, poll_seconds, grace_seconds
        try:
            self._rest = make_rest_server(self.service, host, rest_port)
        except OSError as err:  # in use, not this machine's address, an unknown host name
            raise ConfigError(f"REST: cannot listen on {host}:{rest_port}: {err}") from None
        try:
            self._grpc, self.grpc_port = make_grpc_server(self.service, host, grpc_port)
        except (OSError, RuntimeError) as err:  # gRPC says "Failed to bind" with a RuntimeError
            self._rest.server_close()
            raise ConfigError(f"gRPC: cannot listen on {host}:{grpc_port}: {err}") from None
        self.rest_port = self._rest.server_address[1]
        self._rest_thread = threading.Thread(target=self._rest.serve_forever, name="rest", daemon=True)

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def start(self) -> ModelServer:
        self.manager.poll()
        self.manager.start(self.poll_seconds)
        self._rest_thread.start()
        self._grpc.start()
        log.info("serving REST on %s, gRPC on %s", self.rest_url, self.grpc_target)
        return self

    def stop(self) -> None:
        """Stops accepting (new predictions get 503 / UNAVAILABLE, new REST connections 503), lets
        the requests in flight finish (up to ``grace_seconds``), then closes: what ``docker stop``
        and Kubernetes expect of SIGTERM."""
        until = time.monotonic() + self.grace_seconds
        self.service.stop_accepting()
        self._rest.stop_accepting()
        calls = self.service.drain(self.grace_seconds)
        connections = self._rest.drain(max(0.0, until - time.monotonic()))
        if calls or connections:
            log.warning(
                "stopping after %gs with %d predictions and %d REST connections unfinished",
                self.grace_seconds,
                calls,
                connections,
            )
        self._grpc.stop(grace=0).wait()
        self._rest.close()
        self.manager.stop()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def sources_from_flags(model_name: str, model_base_path: str | None, model_config_file: str | None):
    """The models to serve; a base path that is not a folder is an error (the server would start
    and answer every request with 503)."""
    if bool(model_base_path) == bool(model_config_file):
        raise ConfigError("give exactly one of --model_base_path or --model_config_file")
    if model_config_file:
        sources = read_model_config(model_config_file)
    else:
        sources = [ModelSource(model_name, Path(model_base_path).resolve())]
    for source in sources:
        if not source.base_path.is_dir():
            raise ConfigError(f"model {source.name!r}: base path {source.base_path} is not a folder")
    return sources


def serve(args) -> None:
    """``tfshop serve``: runs until SIGINT or SIGTERM."""
    batching = None
    if args.enable_batching:
        batching = (
            BatchingOptions.from_file(args.batching_parameters_file)
            if args.batching_parameters_file
            else BatchingOptions()
        )
    elif args.batching_parameters_file:
        raise ConfigError("--batching_parameters_file needs --enable_batching")
    limits = Limits(
        max_request_rows=args.max_request_rows,
        max_request_bytes=args.max_request_bytes,
        max_concurrent_requests=args.max_concurrent_requests,
        max_connections=args.max_connections,
        read_timeout_seconds=args.read_timeout_seconds,
        request_timeout_seconds=args.request_timeout_seconds,
    )
    try:
        limits.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if args.shutdown_grace_seconds < 0:
        raise ConfigError(f"--shutdown_grace_seconds: must be >= 0, got {args.shutdown_grace_seconds}")
    server = ModelServer(
        sources_from_flags(args.model_name, args.model_base_path, args.model_config_file),
        host=args.host,
        rest_port=args.rest_api_port,
        grpc_port=args.port,
        batching=batching,
        limits=limits,
        poll_seconds=args.file_system_poll_wait_seconds,
        grace_seconds=args.shutdown_grace_seconds,
    )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    with server:
        print(f"serving REST on {server.rest_url} and gRPC on {server.grpc_target}", flush=True)
        while not stopped.wait(timeout=0.2):  # a wait without timeout may miss the signal: Python
            pass  # runs handlers in the main thread, which a signal sent to another thread never wakes
    print("server stopped", flush=True)
