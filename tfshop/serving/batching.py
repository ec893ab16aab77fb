"""Server-side dynamic batching: concurrent requests merged into one model call.

A request waits at most ``batch_timeout_micros`` for others to join it, up to ``max_batch_size``
rows. Only requests whose inputs have the same trailing shapes are merged. The queue holds at
most ``max_enqueued_batches`` full batches of rows; past that a request is refused at once
(UNAVAILABLE), so overload shows as fast errors rather than growing latency.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as StillRunning
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from tfshop.errors import ConfigError
from tfshop.serving.deadline import NO_DEADLINE, Deadline
from tfshop.serving.status import ServingError, unavailable

log = logging.getLogger(__name__)
Arrays = dict[str, np.ndarray]
CHECK_EVERY_SECONDS = 0.1  # how often a waiting request looks at its deadline and its client


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's batching parameters, under the names of its ``--batching_parameters_file``."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 32
    num_batch_threads: int = 2

    @classmethod
    def from_file(cls, path: str | Path) -> BatchingOptions:
        """Reads the text format ``max_batch_size { value: 128 }``, one field per line."""
        known, found = {f.name for f in fields(cls)}, {}
        if not Path(path).is_file():
            raise ConfigError(f"{path}: batching parameters file not found")
        for line in Path(path).read_text().splitlines():
            if not line.strip() or line.strip().startswith("#"):
                continue
            match = re.fullmatch(r"\s*(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}\s*", line)
            if not match or match[1] not in known:
                raise ConfigError(
                    f"{path}: cannot read {line.strip()!r} (fields: {', '.join(sorted(known))})"
                )
            found[match[1]] = int(match[2])
        options = cls(**found)
        if min(options.max_batch_size, options.max_enqueued_batches, options.num_batch_threads) < 1:
            raise ConfigError(f"{path}: sizes and thread counts must be at least 1")
        return options


@dataclass
class _Task:
    inputs: Arrays
    rows: int
    key: tuple
    future: Future
    deadline: Deadline


class Batcher:
    """Runs ``run(inputs, deadline) -> outputs`` on merged batches in ``num_batch_threads``
    threads. A request whose deadline passes (or whose client gives up) while it waits is
    answered at once and left out of its batch; a merged batch runs to its end."""

    def __init__(self, run: Callable[[Arrays, Deadline], Arrays], options: BatchingOptions):
        self.run, self.options = run, options
        self._queue: queue.Queue[_Task | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued_rows = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batcher-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Arrays, rows: int, deadline: Deadline = NO_DEADLINE) -> Arrays:
        """Blocks until the request's rows are scored (alone once the batcher is closed)."""
        key = tuple(sorted((name, array.shape[1:], array.dtype.str) for name, array in inputs.items()))
        task = _Task(inputs, rows, key, Future(), deadline)
        with self._lock:
            if self._closed:
                return self.run(inputs, deadline)
            limit = self.options.max_batch_size * self.options.max_enqueued_batches
            if self._queued_rows + rows > limit:
                raise unavailable(f"the batching queue is full ({self._queued_rows} rows waiting)")
            self._queued_rows += rows
            self._queue.put(task)
        while True:
            try:
                return task.future.result(timeout=CHECK_EVERY_SECONDS)
            except StillRunning:
                try:
                    deadline.check()
                except ServingError:
                    task.future.cancel()  # not run if it has not started
                    raise

    def close(self) -> None:
        """Scores everything already queued, then stops the threads."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _take(self, timeout: float | None) -> _Task | None:
        task = self._queue.get(timeout=timeout)
        if task is not None:
            with self._lock:
                self._queued_rows -= task.rows
        return task

    def _work(self) -> None:
        carry: _Task | None = None
        stopping = False
        while not (stopping and carry is None):
            first = carry or self._take(None)
            carry = None
            if first is None:
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self.options.batch_timeout_micros / 1e6
            while rows < self.options.max_batch_size and not stopping:
                try:
                    task = self._take(max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if task is None:
                    stopping = True
                elif task.key != first.key or rows + task.rows > self.options.max_batch_size:
                    carry = task
                    break
                else:
                    batch.append(task)
                    rows += task.rows
            self._run(batch)

    def _run(self, batch: list[_Task]) -> None:
        batch = [task for task in batch if _still_wanted(task)]
        if len(batch) <= 1:
            for task in batch:
                _settle(task, lambda task=task: self.run(task.inputs, task.deadline))
            return
        try:
            merged = {name: np.concatenate([t.inputs[name] for t in batch]) for name in batch[0].inputs}
            outputs = self.run(merged, NO_DEADLINE)
        except Exception:  # noqa: BLE001  (one bad request must not fail the others: rerun alone)
            log.debug("merged batch failed; scoring its %d requests one by one", len(batch))
            for task in batch:
                _settle(task, lambda task=task: self.run(task.inputs, task.deadline))
            return
        start = 0
        for task in batch:
            task.future.set_result({k: v[start : start + task.rows] for k, v in outputs.items()})
            start += task.rows


def _still_wanted(task: _Task) -> bool:
    """Marks the task running; False (answered, where not cancelled) if it is no longer wanted."""
    if not task.future.set_running_or_notify_cancel():
        return False
    try:
        task.deadline.check()
    except ServingError as err:
        task.future.set_exception(err)
        return False
    return True


def _settle(task: _Task, call: Callable[[], Arrays]) -> None:
    try:
        task.future.set_result(call())
    except Exception as err:  # noqa: BLE001  (handed to the waiting request)
        task.future.set_exception(err)
