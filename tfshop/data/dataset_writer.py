"""Writing a dataset directory, for prepare (shop logs) and for tables of examples alike.

The directory is built in a hidden temporary sibling and renamed into place when complete, so an
error leaves nothing behind and an existing dataset is replaced only at the final rename. Rows
that cannot be used go to ``quarantine/part-*.parquet`` with their reason and are counted in
``prepare_report.json``; the finished directory holds ``schema.json``, ``stats.json``,
``prepare_report.json``, the TFRecord shards and ``shards.json`` (each shard's size).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tfshop.data.records import write_records, write_shard_manifest
from tfshop.data.schema import Schema
from tfshop.data.tables import SPLITS, claim_output, replace_dir

log = logging.getLogger(__name__)


def write_shard(
    folder: Path, split: str, index: int, rows: pd.DataFrame, schema: Schema, labels: list[str]
) -> tuple[int, dict[str, int]]:
    """Writes ``rows`` as ``<split>-<index>.tfrecord.gz``; returns their count and the positives
    of each of ``labels``."""
    write_records(folder / f"{split}-{index:05d}.tfrecord.gz", rows, schema)
    return len(rows), {name: int((rows[name] > 0).sum()) for name in labels}


class Report:
    """Counts of everything read, kept, set aside and written; ``prepare_report.json``."""

    def __init__(self, **counts) -> None:
        self.data: dict = {
            **counts,
            "quarantined": {},
            "examples": dict.fromkeys(SPLITS, 0),
            "labels": {},
            "notes": [],
        }

    def quarantine(self, reason: str, rows: int) -> None:
        q = self.data["quarantined"]
        q[reason] = q.get(reason, 0) + rows

    def note(self, text: str) -> None:
        log.info(text)
        self.data["notes"].append(text)


class DatasetWriter:
    """A dataset directory under construction: ``with DatasetWriter(out) as dataset: ...``.

    ``dataset.folder`` is the temporary directory to write into; leaving the block renames it to
    ``out`` (an exception removes it instead).
    """

    def __init__(self, out: str | Path, overwrite: bool = False, **report_counts) -> None:
        self.out = Path(out)
        self.folder = claim_output(self.out, overwrite, "schema.json", "dataset directory")
        self.report = Report(**report_counts)
        self._quarantine_parts = 0

    def __enter__(self) -> DatasetWriter:
        self.folder.mkdir(parents=True)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            shutil.rmtree(self.folder / "_partitions", ignore_errors=True)
            replace_dir(self.folder, self.out)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def quarantine(self, rows: pd.DataFrame, reasons: pd.Series | str) -> None:
        """Sets ``rows`` aside with their reasons (one for all, or one per row), counted."""
        if rows.empty:
            return
        rows = rows.astype(str).assign(reason=reasons)
        for reason, count in rows["reason"].value_counts().items():
            self.report.quarantine(str(reason), int(count))
        folder = self.folder / "quarantine"
        folder.mkdir(exist_ok=True)
        table = pa.Table.from_pandas(rows, preserve_index=False)
        pq.write_table(table, folder / f"part-{self._quarantine_parts:05d}.parquet")
        self._quarantine_parts += 1

    def write_shard(
        self, split: str, index: int, rows: pd.DataFrame, schema: Schema, labels: list[str]
    ) -> None:
        """Rows of one split as shard ``index``; counts them and the positives of ``labels``."""
        self.count_shard(split, *write_shard(self.folder, split, index, rows, schema, labels))

    def count_shard(self, split: str, examples: int, positives: dict[str, int]) -> None:
        """Adds a written shard's examples and label positives to the report."""
        self.report.data["examples"][split] += examples
        counts = self.report.data["labels"].setdefault(split, {})
        for name, n in positives.items():
            counts[name] = counts.get(name, 0) + n

    def finish(self, schema: Schema, stats: dict, **report) -> None:
        """Writes the schema, the statistics, the report and the shard manifest."""
        schema.save(self.folder / "schema.json")
        (self.folder / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
        self.report.data.update(report)
        (self.folder / "prepare_report.json").write_text(json.dumps(self.report.data, indent=2) + "\n")
        write_shard_manifest(self.folder)
