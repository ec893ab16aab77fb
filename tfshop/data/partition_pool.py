"""Prepare's per-partition work in worker processes, one partition per task.

Grouping a partition's events into examples (pass 2) and encoding and compressing its records
(pass 3) depend only on that partition, so ``workers`` processes do them side by side. What is
combined across partitions (report counts, quarantine files, vocabularies and statistics) is
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
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from tfshop.data.dataset_writer import write_shard
from tfshop.data.examples import assign_split
from tfshop.data.schema import Schema
from tfshop.data.tables import SPLITS

ShardCounts = dict[str, tuple[int, dict[str, int]]]  # split → (examples, {label: positives})


def default_workers(partitions: int) -> int:
    return max(1, min(os.cpu_count() or 1, partitions))


def write_partition(
    folder: Path, index: int, examples_file: Path, schema: Schema, split: str, cuts, labels: list[str]
) -> ShardCounts:
    """Writes partition ``index``'s examples as one shard per split; returns what it wrote."""
    examples = pd.read_parquet(examples_file)
    examples["split"] = assign_split(examples, split, *cuts)
    counts = {}
    for name in SPLITS:
        rows = examples[examples["split"] == name]
        if len(rows):
            counts[name] = write_shard(folder, name, index, rows, schema, labels)
    return counts


def _worker_context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tfshop.data.prepare", "tensorflow", "tfx_bsl.coders.example_coder"])
    multiprocessing.forkserver.ensure_running()  # loads them while the caller reads its input
    return context


class PartitionPool:
    """``with pool:`` ``submit(fn, *args)`` per partition, then ``results()`` in submission order."""

    def __init__(self, workers: int):
        self._futures: list[Future] = []
        self._pool = None
        if workers > 1:
            self._pool = ProcessPoolExecutor(workers, mp_context=_worker_context())

    def submit(self, fn, *args) -> None:
        if self._pool is None:
            done: Future = Future()
            done.set_result(fn(*args))
            self._futures.append(done)
        else:
            self._futures.append(self._pool.submit(fn, *args))

    def results(self) -> list:
        """Each task's result, waiting for all; a task's error is raised here."""
        futures, self._futures = self._futures, []
        return [future.result() for future in futures]

    def __enter__(self) -> PartitionPool:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
