"""Prepare's passes in worker processes on this machine: the in-process runner.

Checking a row group of the log (pass 1), grouping a partition's events into examples (pass 2)
and encoding and compressing its records (pass 3) depend only on that piece, so ``workers``
processes do them side by side; partitions pass from pass 1 to pass 2 as Parquet files. What is
combined across pieces (report counts, quarantine files, vocabularies and statistics) is
combined by the caller in partition order, so the dataset is the one a serial run writes.
Workers are forked from a fork server that loads TensorFlow and tfx-bsl once, never from the
caller: a process whose TensorFlow threads have run (a test session, a notebook, a pipeline that
trained) cannot be forked safely, as a lock held by one of its threads stays held in the child.
With one worker the tasks run in the calling process.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from tfshop.data.partition_tasks import (
    CheckedChunk,
    EventCheck,
    GroupedPartition,
    group_partition,
    spill_row_group,
)


def default_workers(partitions: int) -> int:
    return max(1, min(os.cpu_count() or 1, partitions))


def _worker_context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["tfshop.data.partition_tasks", "tensorflow", "tfx_bsl.coders.example_coder"]
    )
    multiprocessing.forkserver.ensure_running()  # loads them while the caller reads its input
    return context


class PartitionPool:
    """Prepare's passes in ``workers`` processes on this machine (``workers: 1``: in this one)."""

    def __init__(self, workers: int):
        self._futures: list[Future] = []
        self._pool = None
        if workers > 1:
            self._pool = ProcessPoolExecutor(workers, mp_context=_worker_context())

    def check_and_group(
        self, row_groups: list[tuple[Path, int]], check: EventCheck, folder: Path, items, users
    ) -> tuple[list[CheckedChunk], list[GroupedPartition | None]]:
        """Passes 1 and 2: each row group's chunks checked (in log order) and each partition's
        events grouped into examples (``folder/examples-K.parquet``), partitions moved between
        them through ``folder/pK/`` files."""
        for index, (file, group) in enumerate(row_groups):
            self.submit(spill_row_group, folder, index, file, group, check)
        checked = [chunk for chunks in self.results() for chunk in chunks]
        for k in range(check.partitions):
            self.submit(group_partition, folder, k, items, users, check.config)
        return checked, list(self.results())

    def submit(self, fn, *args) -> None:
        if self._pool is None:
            done: Future = Future()
            done.set_result(fn(*args))
            self._futures.append(done)
        else:
            self._futures.append(self._pool.submit(fn, *args))

    def results(self) -> Iterator:
        """Each task's result in submission order, as it is ready (the caller need not hold them
        all at once); a task's error is raised here."""
        futures, self._futures = self._futures, []
        for future in futures:
            yield future.result()

    def __enter__(self) -> PartitionPool:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
