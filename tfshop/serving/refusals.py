"""503 answers to connections the REST server will not serve, closed without losing the answer.

Closing a socket whose client sent bytes the server never read makes the kernel reset the
connection, and the client then loses the answer it had not read yet. So a refused connection
gets its answer, a half-close, and up to ``LINGER_SECONDS`` in which whatever the client still
sends is read and dropped; one thread does this for every refused connection.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time

from tfshop.serving.tensors import dumps

LINGER_SECONDS = 1.0


def refusal(message: str) -> bytes:
    """A whole HTTP/1.1 503 response with ``{"error": message}``."""
    body = dumps({"error": message})
    return (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


class Refuser:
    """Answers and closes refused connections in a background thread."""

    def __init__(self):
        self._new: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._linger, name="rest-refusals", daemon=True).start()

    def refuse(self, connection: socket.socket, answer: bytes) -> None:
        try:
            connection.setblocking(False)
            connection.send(answer)  # a fresh socket's send buffer takes a few hundred bytes whole
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            connection.close()
            return
        with self._lock:
            self._pending += 1
        self._new.put(connection)

    def finish(self, seconds: float = LINGER_SECONDS) -> None:
        """Waits (at most ``seconds``) until every refused connection is closed."""
        until = time.monotonic() + seconds
        while self._pending and time.monotonic() < until:
            time.sleep(0.02)

    def _linger(self) -> None:
        selector, deadlines = selectors.DefaultSelector(), {}
        while True:
            while not self._new.empty():
                connection = self._new.get()
                selector.register(connection, selectors.EVENT_READ)
                deadlines[connection] = time.monotonic() + LINGER_SECONDS
            done = [key.fileobj for key, _ in selector.select(timeout=0.05) if not _read_some(key.fileobj)]
            now = time.monotonic()
            done += [c for c, deadline in deadlines.items() if deadline < now and c not in done]
            for connection in done:
                selector.unregister(connection)
                del deadlines[connection]
                connection.close()
                with self._lock:
                    self._pending -= 1


def _read_some(connection: socket.socket) -> bool:
    """Reads and drops what the client sent; False once it closed its side (or failed)."""
    with contextlib.suppress(BlockingIOError):
        try:
            return bool(connection.recv(1 << 16))
        except OSError:
            return False
    return True
