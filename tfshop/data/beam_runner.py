"""Prepare's passes as Apache Beam pipelines: the runner for a cluster (Flink, Spark).

Pass 1 checks each row group of the log on a worker and emits its valid events per user
partition as Arrow tables (zstd-compressed IPC bytes, one element per chunk and partition, never
per event); a GroupByKey brings each partition's tables together, put back in log order, for
pass 2; pass 3 writes each partition's shards. The work is done by the same functions as the
in-process runner's (``partition_tasks``), so both write the same dataset. What a worker returns
reaches the launching process as a small pickle file in the dataset's temporary folder (written
whole, then renamed, so a retried worker leaves no half-written result): the shop and that
folder must be on a file system that every worker sees at the same path.
"""

from __future__ import annotations

import logging
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from tfshop.data.partition_tasks import (
    CheckedChunk,
    EventCheck,
    GroupedPartition,
    check_row_group,
    group_events,
)
from tfshop.errors import ConfigError

log = logging.getLogger(__name__)


class BeamRunner:
    """``check_and_group`` (passes 1 and 2) as one pipeline, then ``submit``/``results`` (pass 3)
    as another."""

    def __init__(self, options: list[str], scratch: Path):
        from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
        from apache_beam.runners.runner import create_runner

        self._options = PipelineOptions(options)
        runner = self._options.view_as(StandardOptions).runner or "DirectRunner"
        try:
            create_runner(runner)
        except ValueError as err:
            raise ConfigError(f"--runner {runner}: {err}") from None
        self._scratch = scratch  # where workers leave their results
        self._tasks: list[tuple] = []

    def check_and_group(
        self, row_groups: list[tuple[Path, int]], check: EventCheck, folder: Path, items, users
    ) -> tuple[list[CheckedChunk], list[GroupedPartition | None]]:
        """Each row group's chunks checked (in log order) and each partition's events grouped
        into examples (``folder/examples-K.parquet``; None for a partition without events)."""
        import apache_beam as beam

        results = self._results_folder("group")
        log.info("Beam: checking %d row groups and grouping %d partitions", len(row_groups), check.partitions)
        with beam.Pipeline(options=self._options) as pipeline:
            _ = (
                pipeline
                | "row groups" >> beam.Create(list(enumerate(row_groups)))
                | "spread" >> beam.Reshuffle()
                | "check" >> beam.FlatMap(_check, check, results)
                | "by partition" >> beam.GroupByKey()
                | "group" >> beam.Map(_group, folder, items, users, check.config, results)
            )
        checked = [chunk for i in range(len(row_groups)) for chunk in _load(results / f"checked-{i}.pkl")]
        files = [results / f"grouped-{k}.pkl" for k in range(check.partitions)]
        grouped = [_load(file) if file.exists() else None for file in files]  # None: no events
        return checked, grouped

    def submit(self, fn, *args) -> None:
        self._tasks.append((fn, args))

    def results(self) -> Iterator:
        """Runs the submitted tasks as one pipeline; their results in submission order, loaded
        one at a time."""
        import apache_beam as beam

        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        results = self._results_folder("tasks")
        with beam.Pipeline(options=self._options) as pipeline:
            _ = (
                pipeline
                | "tasks" >> beam.Create(list(enumerate(tasks)))
                | "spread" >> beam.Reshuffle()
                | "run" >> beam.Map(_run, results)
            )
        for i in range(len(tasks)):
            yield _load(results / f"task-{i}.pkl")

    def _results_folder(self, name: str) -> Path:
        results = self._scratch / name
        results.mkdir(parents=True, exist_ok=True)
        return results

    def __enter__(self) -> BeamRunner:
        return self

    def __exit__(self, *_) -> None:
        self._tasks = []


def _check(indexed: tuple[int, tuple[Path, int]], check: EventCheck, results: Path):
    index, (file, group) = indexed
    checked = check_row_group(file, group, check)
    for n, chunk in enumerate(checked):
        for k, table in chunk.parts.items():
            yield k, (index, n, _pack(table))
        chunk.parts = {}
    _save(results / f"checked-{index}.pkl", checked)


def _group(keyed, folder: Path, items, users, config, results: Path) -> None:
    k, pieces = keyed
    tables = [_unpack(packed) for _, _, packed in sorted(pieces, key=lambda piece: piece[:2])]
    _save(results / f"grouped-{k}.pkl", group_events(tables, folder, k, items, users, config))


def _pack(table: pa.Table) -> bytes:
    """An Arrow table as compressed IPC bytes: what the runner holds in its shuffle is about a
    fifth of the table's size."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as out:
        out.write_table(table)
    return sink.getvalue().to_pybytes()


def _unpack(packed: bytes) -> pa.Table:
    return pa.ipc.open_stream(packed).read_all()


def _run(indexed: tuple[int, tuple], results: Path) -> None:
    index, (fn, args) = indexed
    _save(results / f"task-{index}.pkl", fn(*args))


def _save(path: Path, value) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)


def _load(path: Path):
    if not path.exists():
        raise RuntimeError(f"the Beam pipeline finished without writing {path}")
    return pickle.loads(path.read_bytes())
