"""``tfshop serve``'s flags: TF Serving's names and meanings, plus tfshop's bind address and limits.

Kept apart from the server so that ``tfshop --help`` builds its parser without loading TensorFlow.
"""

from __future__ import annotations

from tfshop.serving.limits import Limits


def add_serve_flags(parser) -> None:
    """TF Serving's flags (same names and meaning), plus tfshop's bind address and limits."""
    parser.add_argument("--model_name", default="default", help="with --model_base_path")
    parser.add_argument("--model_base_path", help="folder of integer version directories")
    parser.add_argument("--model_config_file", help="text ModelServerConfig (several models, labels)")
    parser.add_argument("--port", type=port, default=8500, help="gRPC port (0: any free port)")
    parser.add_argument("--rest_api_port", type=port, default=8501, help="REST port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0, help="0: never re-poll")
    parser.add_argument("--enable_batching", action="store_true", help="server-side dynamic batching")
    parser.add_argument("--batching_parameters_file", help="max_batch_size { value: 64 } ... per line")
    parser.add_argument("--max_request_rows", type=int, default=Limits.max_request_rows)
    parser.add_argument("--max_request_bytes", type=int, default=Limits.max_request_bytes)
    parser.add_argument("--max_concurrent_requests", type=int, default=Limits.max_concurrent_requests)
    parser.add_argument(
        "--max_connections",
        type=int,
        default=Limits.max_connections,
        help="open REST connections; more get 503",
    )
    parser.add_argument(
        "--shutdown_grace_seconds",
        type=float,
        default=5.0,
        help="on SIGTERM: most seconds to let requests in flight finish",
    )
    parser.add_argument(
        "--read_timeout_seconds",
        type=float,
        default=Limits.read_timeout_seconds,
        help="REST: most seconds to send a request's head, then its body; idle connections close after it",
    )
    parser.add_argument(
        "--request_timeout_seconds",
        type=float,
        default=Limits.request_timeout_seconds,
        help="REST: most seconds to answer a request, then 504 (gRPC keeps the client's deadline)",
    )


def port(text: str) -> int:
    """A TCP port number, 0 to 65535 (argparse names the flag when this raises)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value
