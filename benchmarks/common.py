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


def epoch_clock():
    """A Keras callback recording each epoch's seconds: training alone, and with its validation."""
    import tf_keras as keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.with_validation = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_test_begin(self, logs=None):
            if len(self.seconds) == len(self.with_validation):  # fit's validation, not an evaluate
                self.seconds.append(time.perf_counter() - self.started)

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.perf_counter() - self.started
            if len(self.seconds) == len(self.with_validation):  # an epoch without validation
                self.seconds.append(elapsed)
            self.with_validation.append(elapsed)

    return Clock()


def epoch_timings(clock, rows: int) -> dict:
    """Examples/s over the epochs after the first (medians of training alone), and epoch seconds."""
    later = clock.seconds[1:]
    return {
        "examples_per_sec": round(rows / median(later), 1),
        "first_epoch_seconds": round(clock.seconds[0], 2),
        "later_epoch_seconds": round(median(later), 2),
        "later_epoch_seconds_with_validation": round(median(clock.with_validation[1:]), 2),
    }


def medians(results: list[dict]) -> dict:
    """The median of each numeric key over ``results`` (one dict per run)."""
    keys = [k for k in results[0] if isinstance(results[0][k], (int, float))]
    return {k: round(median([r[k] for r in results]), 4) for k in keys}


def clock_tfshop_training():
    """An :func:`epoch_clock` that every later ``tfshop.training.train.train`` call in this
    process runs among its callbacks."""
    from tfshop.training import train as training

    clock = epoch_clock()
    default = training._callbacks
    training._callbacks = lambda *args: [clock, *default(*args)]
    return clock
