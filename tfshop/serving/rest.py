"""TF Serving's REST API over HTTP/1.1 (keep-alive), one thread per connection.

A client has ``read_timeout_seconds`` to send a request's head (or, on a kept-alive connection,
the next request) and as long again for its body; a slow or silent one is cut off then, so
half-sent requests cannot hold threads. Beyond ``max_connections`` open connections a new one
gets 503 at once and is closed.

    GET  /v1/models/{name}[/versions/{v}|/labels/{label}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{label}]/metadata   signatures
    POST /v1/models/{name}[/versions/{v}|/labels/{label}]:predict    scores

Names and labels from the URL are only looked up among the configured models; they never
reach the file system.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format

from tfshop.serving.deadline import Deadline
from tfshop.serving.limits import Limits
from tfshop.serving.refusals import Refuser, refusal
from tfshop.serving.service import Service
from tfshop.serving.status import ServingError, invalid, not_found
from tfshop.serving.tensors import dumps, loads, rows_from_json, to_json

log = logging.getLogger(__name__)
IDLE_LINGER_SECONDS = 0.5  # stopping: how long a kept-alive connection may stay idle before it closes

_URL = re.compile(
    r"^/v1/models/(?P<name>[A-Za-z0-9_.\-]+)"
    r"(?:/versions/(?P<version>\d{1,18})|/labels/(?P<label>[A-Za-z0-9_.\-]+))?"
    r"(?P<verb>/metadata|:predict|:classify|:regress)?$"
)


def _proto_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class RestHandler(BaseHTTPRequestHandler):
    """Routes one request to the ``Service``; every failure becomes ``{"error": ...}``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stall
    server_version = "tfshop-serving"
    service: Service  # set on the subclass made by ``make_rest_server``
    server: RestServer

    def handle_one_request(self) -> None:
        self.server.reading(self.connection, idle=True)  # the next request's head
        super().handle_one_request()

    def parse_request(self) -> bool:
        self.server.reading(self.connection)  # a request has begun: no longer idle
        return super().parse_request()

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def do_PUT(self) -> None:  # and the other methods the API has no use for: 405, as JSON
        self._answer(self._not_allowed)

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT

    def _not_allowed(self, *_):
        self._discard_body()
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED, f"{self.command} is not served: use GET or POST", 405
        )

    def _answer(self, route) -> None:
        self.server.reading(self.connection)  # the body, if any
        self._respond(route)

    def _respond(self, route) -> None:
        try:
            status, body = route(*self._parse_url())
        except ServingError as err:
            status, body = err.http_status, {"error": err.message}
        except Exception as err:  # noqa: BLE001  (a failing request never takes the server down)
            log.exception("REST request %s failed", self.path)
            status, body = 500, {"error": f"internal error: {type(err).__name__}: {err}"}
        payload = dumps(body)
        if self.server.stopping:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:  # the unread rest of the request makes this connection unusable
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _parse_url(self):
        match = _URL.match(self.path.split("?", 1)[0])
        if not match:
            self._discard_body()
            raise not_found(f"no such resource: {self.path[:200]}")
        version = int(match["version"]) if match["version"] else None
        return match["name"], version, match["label"], match["verb"] or ""

    def _get(self, name, version, label, verb):
        self.server.reading(self.connection, False)
        if verb == "/metadata":
            model, signatures = self.service.metadata(name, version, label)
            spec = {"name": name, "signature_name": "", "version": str(model.version)}
            return 200, {"model_spec": spec, "metadata": {"signature_def": _proto_json(signatures)}}
        if verb:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"use POST for {verb}")
        return 200, _proto_json(self.service.status(name, version, label))

    def _post(self, name, version, label, verb):
        body = self._read_json()
        if verb != ":predict":
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED, f"POST {verb or 'without a verb'} is not served"
            )
        if not isinstance(body, dict):
            raise invalid("the request body must be a JSON object")
        signature, limits = body.get("signature_name", ""), self.service.limits
        if not isinstance(signature, str):
            raise invalid("'signature_name' must be text")
        result = self.service.predict(
            name,
            version,
            label,
            signature,
            lambda spec: rows_from_json(body, spec, limits.max_request_rows),
            deadline=Deadline(limits.request_timeout_seconds),
        )
        outputs = {k: to_json(v) for k, v in result.outputs.items()}
        single = next(iter(outputs.values())) if len(outputs) == 1 else None
        if "instances" in body:
            rows = len(next(iter(result.outputs.values())))
            by_row = [{k: v[i] for k, v in outputs.items()} for i in range(rows)] if single is None else None
            predictions = single if single is not None else by_row
            return 200, {"predictions": predictions}
        return 200, {"outputs": single if single is not None else outputs}

    def _read_json(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "a Content-Length header is required")
        limit = self.service.limits.max_request_bytes
        if int(length) > limit:
            self.close_connection = True
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes is over the limit of {limit}",
            )
        raw = self.rfile.read(int(length))
        self.server.reading(self.connection, False)
        try:
            return loads(raw)
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError both are
            raise invalid(f"malformed JSON: {err}") from None

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= self.service.limits.max_request_bytes:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)


class RestServer(ThreadingHTTPServer):
    """One thread per connection, at most ``limits.max_connections`` of them, each cut off when
    its client is slower than ``limits.read_timeout_seconds``; a listen backlog for bursts of
    clients (the standard library's 5 overflows when dozens connect at once, and the kernel then
    resets connections).

    Stopping is graceful: ``stop_accepting`` answers new connections 503 and closes idle kept-alive
    ones, requests in flight finish and close their connections (``drain`` waits for that), then
    ``close`` answers the connections still waiting in the listen backlog 503 too, so no client
    that got through is cut off without an answer."""

    daemon_threads = True
    request_queue_size = 1024
    _BUSY = refusal("the server is busy: too many open connections")
    _STOPPING = refusal("the server is shutting down")

    def __init__(self, address, handler, limits: Limits):
        self.limits = limits
        self._deadlines: dict[socket.socket, float | None] = {}  # None: not waiting on the client
        self._idle: dict[socket.socket, float] = {}  # kept-alive, waiting for a next request since
        self._lock, self._closed, self._stopping = threading.Lock(), threading.Event(), threading.Event()
        self._refuser = Refuser()
        super().__init__(address, handler)  # closes the server itself if it cannot bind
        threading.Thread(target=self._cut_slow_clients, name="rest-timeouts", daemon=True).start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def process_request(self, request, client_address) -> None:
        with self._lock:
            full = len(self._deadlines) >= self.limits.max_connections
            if not (full or self.stopping):
                self._deadlines[request] = None
        if self.stopping:
            self._refuser.refuse(request, self._STOPPING)
        elif full:
            self._refuser.refuse(request, self._BUSY)
        else:
            super().process_request(request, client_address)

    def stop_accepting(self) -> None:
        """New connections get 503 from now on; a kept-alive connection is closed once it has
        been idle ``IDLE_LINGER_SECONDS`` (a client in the middle of sending its next request
        gets an answer, not a closed connection)."""
        self._stopping.set()

    def close(self) -> None:
        """Stops the accept loop, answers the connections left in the listen backlog 503, closes."""
        self.shutdown()
        self.socket.setblocking(False)
        while True:
            try:
                request, _ = self.socket.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                break
            self._refuser.refuse(request, self._STOPPING)
        self.server_close()
        self._refuser.finish()

    def drain(self, grace_seconds: float) -> int:
        """Waits up to ``grace_seconds`` for the open connections to close, as each does once
        its request in flight is answered; returns how many are left."""
        deadline = time.monotonic() + grace_seconds
        while self._deadlines and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self._deadlines)

    def reading(self, connection: socket.socket, waiting: bool = True, idle: bool = False) -> None:
        """Starts (or, with ``waiting=False``, stops) the clock on ``connection``'s client;
        ``idle``: between requests, where stopping may close the connection."""
        deadline = time.monotonic() + self.limits.read_timeout_seconds if waiting else None
        with self._lock:
            if connection in self._deadlines:
                self._deadlines[connection] = deadline
            if idle:
                self._idle[connection] = time.monotonic()
            else:
                self._idle.pop(connection, None)

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._deadlines.pop(request, None)
            self._idle.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        log.debug("REST connection from %s ended with an error", client_address, exc_info=True)

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()

    def _cut_slow_clients(self) -> None:
        """Every 0.1 s: cuts off clients past their read deadline and, once stopping, closes the
        connections idle for ``IDLE_LINGER_SECONDS``."""
        while not self._closed.wait(0.1):
            now = time.monotonic()
            with self._lock:
                late = [
                    c for c, deadline in self._deadlines.items() if deadline is not None and deadline < now
                ]
                if self.stopping:
                    late += [c for c, since in self._idle.items() if now - since >= IDLE_LINGER_SECONDS]
                for connection in late:
                    self._deadlines[connection] = None
                    self._idle.pop(connection, None)
            for connection in late:  # the handler's blocked read returns; its thread ends
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


def make_rest_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundRestHandler", (RestHandler,), {"service": service})
    return RestServer((host, port), handler, service.limits)
