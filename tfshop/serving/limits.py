"""The server's request limits: a module of its own, light enough for the command line to read
their defaults without loading TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """Request size limits, how many requests may run at once (the rest wait, then get 503), how
    many REST connections may be open (the rest get 503 at once) and how long a REST client may
    take to send a request's head, and then its body (an idle keep-alive connection is closed
    after as long)."""

    max_request_rows: int = 4096
    max_request_bytes: int = 64 << 20
    max_concurrent_requests: int = 32
    queue_timeout_seconds: float = 30.0
    max_connections: int = 256
    read_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 60.0  # REST: most seconds to answer a request (then 504)

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"--{name}: must be positive, got {value}")
