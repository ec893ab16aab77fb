"""The server's request limits: a module of its own, light enough for the command line to read
their defaults without loading TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Request size limits and how many requests may run at once (the rest wait, then get 503)."""

    max_request_rows: int = 4096
    max_request_bytes: int = 64 << 20
    max_concurrent_requests: int = 32
    queue_timeout_seconds: float = 30.0
