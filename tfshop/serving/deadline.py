"""When a request stops being worth answering: its deadline passed, or its client went away."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from tfshop.serving.status import ServingError


class Deadline:
    """``seconds`` from now (None: none) and ``client_waiting()``, false once the client gave up."""

    def __init__(self, seconds: float | None = None, client_waiting: Callable[[], bool] | None = None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self._client_waiting = client_waiting

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def check(self) -> None:
        """Raises DEADLINE_EXCEEDED or CANCELLED when the answer is no longer wanted."""
        if self.at is not None and time.monotonic() >= self.at:
            raise ServingError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the request's deadline ({self.seconds:.3g} s) passed before its answer was ready",
            )
        if self._client_waiting is not None and not self._client_waiting():
            raise ServingError(grpc.StatusCode.CANCELLED, "the client cancelled the request")


NO_DEADLINE = Deadline()
