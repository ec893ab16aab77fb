"""Prepare's work on one piece of the log, the same whichever runner runs it.

Pass 1 checks one row group of the event files (``check_row_group``: bad rows for the
quarantine, good ones split into user partitions); pass 2 turns one partition's events into
examples (``group_events``); pass 3 writes one partition's shards (``write_partition``). The
in-process runner (``partition_pool``) moves partitions between passes through files, the Beam
runner (``beam_runner``) through a shuffle; both call these functions unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tfshop.data.clean import drop_duplicates, find_bots, split_valid_events
from tfshop.data.dataset_writer import write_shard
from tfshop.data.examples import (
    assign_split,
    attach_category_views,
    attach_history,
    group_examples,
)
from tfshop.data.schema import Schema
from tfshop.data.statistics import TrainStatistics
from tfshop.data.tables import SPLITS, iter_row_group
from tfshop.errors import DataError

if TYPE_CHECKING:
    from tfshop.data.prepare import PrepareConfig

ShardCounts = dict[str, tuple[int, dict[str, int]]]  # split → (examples, {label: positives})
FILLED_WITH_EMPTY = ("impression_id", "query", "query_intent")


@dataclasses.dataclass
class CheckedChunk:
    """Pass 1 on one chunk of events: its counts and rejected rows, for the caller to report."""

    rows_read: int
    rows_valid: int
    outside_window: int
    bad: pd.DataFrame  # the raw rows with a ``reason`` column
    parts: dict[int, pa.Table] = dataclasses.field(default_factory=dict)  # partition → valid events


@dataclasses.dataclass(frozen=True)
class EventCheck:
    """How pass 1 checks events: their source (for errors), the valid timestamps, the partitions."""

    where: str
    valid_times: tuple[int, int]
    partitions: int
    config: PrepareConfig


def check_row_group(file: Path, group: int, check: EventCheck) -> list[CheckedChunk]:
    """Validates row group ``group`` of ``file`` chunk by chunk; valid events in the window are
    split into partitions by a hash of the user id."""
    config, checked = check.config, []
    for chunk in iter_row_group(file, group, config.chunk_rows):
        good, bad = split_valid_events(chunk, *check.valid_times, check.where, config.max_abs_value)
        inside = (good["timestamp"] >= config.window_from) & (
            (good["timestamp"] < config.window_to) if config.window_to else True
        )
        good = good[inside]
        part = pd.util.hash_pandas_object(good["user_id"], index=False).to_numpy() % check.partitions
        tables = {
            int(k): pa.Table.from_pandas(good[part == k], preserve_index=False) for k in np.unique(part)
        }
        checked.append(CheckedChunk(len(chunk), len(good), int((~inside).sum()), bad, tables))
    return checked


def spill_row_group(
    folder: Path, index: int, file: Path, group: int, check: EventCheck
) -> list[CheckedChunk]:
    """``check_row_group``, its partitions written to ``folder/pK/cINDEX-CHUNK.parquet``."""
    checked = check_row_group(file, group, check)
    for n, chunk in enumerate(checked):
        for k, table in chunk.parts.items():
            target = folder / f"p{k:04d}"
            target.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target / f"c{index:06d}-{n:04d}.parquet")
        chunk.parts = {}
    return checked


@dataclasses.dataclass
class GroupedPartition:
    """What pass 2 found in one partition, for the caller to count and quarantine."""

    duplicates: int
    bot_users: int
    bot_rows: pd.DataFrame
    unknown_items: int = 0
    times: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, dtype="int64"))
    present: set[str] = dataclasses.field(default_factory=set)


def group_partition(folder: Path, k: int, items, users, config: PrepareConfig) -> GroupedPartition | None:
    """Pass 2 on the events spilled into ``folder/pK`` (None when there are none)."""
    files = sorted((folder / f"p{k:04d}").glob("*.parquet"))
    if not files:
        return None
    return group_events([pq.read_table(f) for f in files], folder, k, items, users, config)


def group_events(
    tables: list[pa.Table], folder: Path, k: int, items, users, config: PrepareConfig
) -> GroupedPartition:
    """Pass 2 on partition ``k``'s events (in log order): its examples to ``examples-K.parquet``."""
    events = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    for column in FILLED_WITH_EMPTY:
        if column in events:
            events[column] = events[column].fillna("")
    examples, grouped = _partition_examples(events, items, users, config)
    table = pa.Table.from_pandas(examples, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), folder / f"examples-{k:04d}.parquet")
    grouped.times = examples["timestamp"].to_numpy()
    grouped.present = {c for c in examples.columns if has_values(examples[c])}
    return grouped


def _partition_examples(events, items, users, config) -> tuple[pd.DataFrame, GroupedPartition]:
    events, removed = drop_duplicates(events)
    bots = find_bots(events, config.max_actions_per_hour) if config.max_actions_per_hour else ()
    is_bot = events["user_id"].isin(bots.index) if len(bots) else pd.Series(False, index=events.index)
    grouped = GroupedPartition(removed, len(bots), events[is_bot])
    events = events[~is_bot]
    if config.split == "given" and "split" not in events:
        raise DataError("prepare.split: 'given' needs a split column (train/valid/test) in the events")
    examples = group_examples(events)
    category = items["category"] if items is not None and "category" in items else None
    # a given split need not follow time: histories then hold training events only, so no
    # valid or test interaction reaches a model through another example's history
    known = events[events["split"] == "train"] if config.split == "given" else events
    if config.history_length:
        examples = attach_history(examples, known, config.history_length, category)
    when = pd.to_datetime(examples["timestamp"], unit="s", utc=True)
    examples["hour_of_day"] = when.dt.hour.astype(str)
    examples["day_of_week"] = when.dt.dayofweek.astype(str)
    if items is not None:
        grouped.unknown_items = int((~examples["item_id"].isin(items.index)).sum())
        examples = examples.join(items, on="item_id")
        if "top_category" in examples:
            counted = examples["split"] == "train" if config.split == "given" else None
            examples = attach_category_views(examples, "top_category", counted)
    if users is not None:
        examples = examples.merge(users, on="user_id", how="left")
    return examples, grouped


def has_values(values: pd.Series) -> bool:
    """Whether a column holds anything but missing values and empty strings or lists."""
    values = values.dropna()
    if _is_list(values.dtype):
        return bool((values.list.len() > 0).any())
    if values.dtype == object:
        values = values[values.map(len) > 0]
    return not values.empty


def write_partition(
    folder: Path, index: int, examples_file: Path, schema: Schema, split: str, cuts, labels: list[str]
) -> tuple[ShardCounts, TrainStatistics]:
    """Pass 3: partition ``index``'s examples as one shard per split; returns what it wrote and
    the statistics of its training examples."""
    examples = pq.read_table(examples_file).to_pandas(types_mapper=_list_dtype)
    examples["split"] = assign_split(examples, split, *cuts)
    counts, statistics = {}, TrainStatistics()
    for name in SPLITS:
        rows = examples[examples["split"] == name]
        if name == "train":
            statistics.add(schema, rows)
        if len(rows):
            counts[name] = write_shard(folder, name, index, rows, schema, labels)
    return counts, statistics


def _is_list(dtype) -> bool:
    return isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype)


def _list_dtype(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """Lists stay Arrow arrays in pandas (no Python list per row); other columns as usual."""
    return pd.ArrowDtype(arrow_type) if pa.types.is_list(arrow_type) else None
