"""Writing the partitions' TFRecord shards in worker processes, one partition per task.

Encoding and compressing the records is most of prepare's work, and each partition's shards
depend only on that partition's examples, so ``workers`` processes write them side by side
while the main process goes on with the next partition's statistics (which stay in partition
order, so the vocabularies and statistics are those of a serial run). Workers are forked after
TensorFlow and tfx-bsl are loaded, so none loads them again; with one worker the shards are
written in the calling process.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from tfshop.data.examples import assign_split
from tfshop.data.records import write_records
from tfshop.data.schema import Schema
from tfshop.data.tables import SPLITS

ShardCounts = dict[str, dict]  # split → {"examples": n, "labels": {name: positives}}


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
            write_records(folder / f"{name}-{index:05d}.tfrecord.gz", rows, schema)
            counts[name] = {"examples": len(rows), "labels": {lb: int((rows[lb] > 0).sum()) for lb in labels}}
    return counts


class ShardPool:
    """``submit`` partitions as they are ready; ``results`` waits for them all, in order."""

    def __init__(self, workers: int):
        self._futures: list[Future] = []
        self._pool = None
        if workers > 1:
            import tensorflow  # noqa: F401  (loaded once here; the forked workers inherit it)
            import tfx_bsl.coders.example_coder  # noqa: F401

            fork = "fork" in multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if fork else "spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=context)

    def submit(self, *args) -> None:
        """``write_partition``'s arguments."""
        if self._pool is None:
            done: Future = Future()
            done.set_result(write_partition(*args))
            self._futures.append(done)
        else:
            self._futures.append(self._pool.submit(write_partition, *args))

    def results(self) -> list[ShardCounts]:
        try:
            return [future.result() for future in self._futures]
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
