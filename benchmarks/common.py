"""Helpers shared by the benchmarks: argument parsing, the result file, and dataset resolution."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import tfshop  # noqa: F401


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True, type=Path, help="dataset or shop directory")
    p.add_argument("--out", required=True, type=Path, help="result JSON file")
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    return p


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def write_result(path: Path, protocol: str, started: float, **metrics) -> dict:
    """Writes metrics (lower-case keys) with the protocol, machine and seconds taken."""
    result = {
        "protocol": protocol,
        **metrics,
        "seconds": round(time.time() - started, 1),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
