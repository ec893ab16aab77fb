"""``prepare``: a shop directory in, a training-ready dataset directory out, streaming.

Three passes. Pass 1 reads the events chunk by chunk, validates them (bad rows go to the
quarantine), and spills the good ones into partitions by a hash of the user id. Pass 2 takes one
partition at a time (all of a user's events are in one), removes duplicates and bots, groups
events into examples with their leakage-free history, and joins item and user fields. Pass 3
assigns the splits (time cut-offs come from all partitions), accumulates vocabularies and
statistics on the train split, and writes gzip TFRecords. Memory is bounded by one chunk or one
partition, not by the log.

The output (``tfshop.data.dataset_writer``: written to a temporary sibling, renamed when complete)::

    schema.json  shards.json  stats.json  prepare_report.json  vocab/*.txt  items.parquet (the catalogue)
    {train,valid,test}-NNNNN.tfrecord.gz      quarantine/*.parquet
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tfshop.config import to_dict
from tfshop.data import schema as sch
from tfshop.data.catalogue import write_catalogue
from tfshop.data.clean import MAX_ABS_VALUE, clear_out_of_range
from tfshop.data.dataset_writer import DatasetWriter, Report
from tfshop.data.examples import FUNNEL_LABELS
from tfshop.data.partition_pool import PartitionPool, default_workers
from tfshop.data.partition_tasks import CheckedChunk, EventCheck, GroupedPartition, write_partition
from tfshop.data.reuse import reuse_vocabularies
from tfshop.data.statistics import TrainStatistics
from tfshop.data.tables import (
    CATEGORY_SEPARATOR,
    EVENT_OPTIONAL,
    EVENT_REQUIRED,
    check_columns,
    event_row_groups,
    open_shop,
    read_items,
    read_users,
)
from tfshop.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class PrepareConfig:
    """Knobs of ``prepare``; every one has a default."""

    split: Literal["time", "leave_last_out", "given"] = "time"
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    history_length: int = 20  # 0 = no behaviour history features
    vocab_min_count: int = 1
    vocab_max_size: int = 0
    num_oov_buckets: int = 1
    user_hash_buckets: int = 100_000  # 0 = a vocabulary of the training split's user ids
    partitions: int = 0
    workers: int = 0  # worker processes of all three passes (0 = one per core, at most one per partition)
    chunk_rows: int = 1_000_000
    max_actions_per_hour: int = 300
    min_timestamp: int = 0
    max_timestamp: int = 0
    vocab_from: str = ""  # a prepared dataset whose vocabularies to keep (incremental training)
    # a time window of valid events to prepare, [window_from, window_to) in unix seconds (0 = open);
    # events outside it are left out and counted, not quarantined
    window_from: int = 0
    window_to: int = 0
    # an event with a number beyond it (or ±inf) is quarantined; an item's or user's is set missing
    max_abs_value: float = MAX_ABS_VALUE

    def validate(self) -> None:
        if not (
            0 <= self.valid_fraction < 1
            and 0 <= self.test_fraction < 1
            and self.valid_fraction + self.test_fraction < 1
        ):
            raise ValueError("valid_fraction/test_fraction: each in [0, 1) and their sum below 1")
        if self.workers < 0:
            raise ValueError("workers: must be >= 0 (0 = one per core)")
        if self.partitions < 0:
            raise ValueError("partitions: must be >= 0 (0 chooses from the number of events)")
        if self.max_actions_per_hour < 0:
            raise ValueError("max_actions_per_hour: must be >= 0 (0 turns the bot filter off)")
        for name in ("chunk_rows", "vocab_min_count", "max_abs_value"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        for name in ("history_length", "user_hash_buckets"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")

    def partition_count(self, events: int) -> int:
        """Partitions (and shards per split): about 750,000 events each, at least 4 (a worker
        holds one partition at a time, about 1 GiB)."""
        return self.partitions or max(4, -(-events // 750_000))

    def timestamp_window(self) -> tuple[int, int]:
        latest = self.max_timestamp or int(time.time()) + 86_400
        return self.min_timestamp, latest


def prepare(
    shop: str | Path,
    out: str | Path,
    config: PrepareConfig | None = None,
    overwrite: bool = False,
    beam_options: list[str] | None = None,
) -> Path:
    """Prepares the shop directory ``shop`` into the dataset directory ``out``: in worker processes
    on this machine, or as Apache Beam pipelines when ``beam_options`` (Beam's command-line
    pipeline options, such as ``["--runner=FlinkRunner", ...]``) are given."""
    config = config or PrepareConfig()
    shop = Path(shop)
    manifest = open_shop(shop)
    counts = {"rows_read": 0, "rows_valid": 0, "outside_window": 0, "duplicates_removed": 0}
    extra = {"bots": {"users": 0, "rows": 0}, "unknown_items": 0, "set_to_missing": {}}
    with DatasetWriter(out, overwrite, **counts, **extra) as dataset:
        _prepare_into(shop, dataset, config, manifest, beam_options)
    return Path(out)


def _prepare_into(
    shop: Path, dataset: DatasetWriter, config: PrepareConfig, manifest: dict, beam_options: list[str] | None
) -> None:
    started, tmp, report = time.time(), dataset.folder, dataset.report
    partitions = config.partition_count(manifest["counts"]["events"])
    items, users, config = _read_tables(shop, dataset, config, manifest)
    row_groups = event_row_groups(shop)
    check = EventCheck(f"{shop}/events", config.timestamp_window(), partitions, config)
    columns = pq.read_schema(row_groups[0][0]).empty_table().to_pandas()
    check_columns(columns, EVENT_REQUIRED, EVENT_OPTIONAL, check.where)
    with _runner(beam_options, config, partitions, tmp / "_partitions") as runner:
        checked, grouped = runner.check_and_group(row_groups, check, tmp / "_partitions", items, users)
        for chunk in checked:
            _count_checked(chunk, dataset)
        log.info("pass 1: %d rows read, %d valid", report.data["rows_read"], report.data["rows_valid"])
        if report.data["rows_valid"] == 0:
            quarantined = report.data["quarantined"]
            raise DataError(f"{shop}: no valid events (see the quarantine reasons: {quarantined})")
        cuts, present = _combine_grouped(grouped, config, dataset, shop)
        log.info("pass 2: %d partitions grouped (%.0fs)", partitions, time.time() - started)
        schema = _draft_schema(present, users, config)
        for k in range(partitions):
            file = tmp / "_partitions" / f"examples-{k:04d}.parquet"
            if file.exists():
                runner.submit(write_partition, tmp, k, file, schema, config.split, cuts, FUNNEL_LABELS)
        statistics = TrainStatistics()
        for counts, partition_statistics in runner.results():
            for split, (examples, positives) in counts.items():
                dataset.count_shard(split, examples, positives)
            statistics.merge(partition_statistics)
    log.info("pass 3: shards written (%.0fs)", time.time() - started)
    vocab, numeric = statistics.vocab, statistics.numeric
    if report.data["examples"]["train"] == 0:
        raise DataError(f"{shop}: no training examples after cleaning and splitting")
    schema = _finish_schema(schema, tmp, vocab, config, report)
    if write_catalogue(schema, tmp, items, vocab.counts.get("item_id", Counter())):
        schema.tasks += _retrieval_task(report)
    shared = schema.shared_vocabularies()
    stats = {
        "numeric": {f.name: numeric.summary(f.name) for f in schema.features_of_kind("numeric")},
        "labels": {
            lb.name: numeric.summary(f"label:{lb.name}") for lb in schema.labels if lb.dtype == "float32"
        },
        "vocab": {
            f.name: {"size": f.vocab_size, "train_coverage": vocab.coverage(f.name, tmp / f.vocab)}
            for f in schema.features
            if f.vocab and f.name not in shared
        },
        "split": {"how": config.split, "valid_from": cuts[0], "test_from": cuts[1]},
    }
    if config.vocab_from:
        schema, stats, note = reuse_vocabularies(tmp, schema, stats, Path(config.vocab_from))
        report.note(note)
    dataset.finish(
        schema,
        stats,
        source=manifest.get("source"),
        shop=str(shop),
        config=to_dict(config),
        seconds=round(time.time() - started, 1),
    )


def _runner(beam_options: list[str] | None, config: PrepareConfig, partitions: int, scratch: Path):
    if beam_options is None:
        return PartitionPool(config.workers or default_workers(partitions))
    from tfshop.data.beam_runner import BeamRunner  # Beam is loaded only when asked for

    return BeamRunner(beam_options, scratch / "beam")


def _read_tables(shop: Path, dataset: DatasetWriter, config: PrepareConfig, manifest: dict):
    """The item and user tables (out-of-range numbers cleared); the config to group with."""
    report = dataset.report
    items, users = _item_table(read_items(shop)), read_users(shop)
    for name, table in (("items", items), ("users", users)):
        if table is not None:
            cleared = clear_out_of_range(table, config.max_abs_value, skip=("user_id",))
            report.data["set_to_missing"].update({f"{name}.{c}": n for c, n in cleared.items()})
    if manifest["counts"].get("malformed_lines"):
        lines, file = manifest["counts"]["malformed_lines"], shop / "quarantine" / "malformed-lines.parquet"
        report.note(f"ingest set aside {lines} malformed source lines ({file})")
    if manifest.get("timestamps") == "rank":
        config = dataclasses.replace(config, max_actions_per_hour=0)
        report.note("bot filter off: this source's timestamps are ranks in each user's sequence")
    return items, users, config


def _count_checked(chunk: CheckedChunk, dataset: DatasetWriter) -> None:
    report = dataset.report
    report.data["rows_read"] += chunk.rows_read
    report.data["rows_valid"] += chunk.rows_valid
    report.data["outside_window"] += chunk.outside_window
    dataset.quarantine(chunk.bad.drop(columns="reason"), chunk.bad["reason"])


def _combine_grouped(
    grouped: list[GroupedPartition | None], config: PrepareConfig, dataset: DatasetWriter, shop: Path
) -> tuple[tuple[int, int], set[str]]:
    """Counts and quarantines pass 2's findings in partition order; returns the time cut-offs
    and the columns with values. Empties ``grouped``: what it holds (every example's timestamp,
    the bots' rows) is not needed in pass 3."""
    times, present = [], set()
    for part in grouped:
        if part is not None:
            _count_grouped(part, config, dataset)
            times.append(part.times)
            present |= part.present
    grouped.clear()
    if not times:
        raise DataError(f"{shop}: no examples left after removing duplicates and bots")
    return _time_cuts(np.concatenate(times), config) if config.split == "time" else (0, 0), present


def _time_cuts(times: np.ndarray, config: PrepareConfig) -> tuple[int, int]:
    """Example timestamps from which valid and test start: the first at or above each quantile
    (``times`` is reordered)."""
    quantiles = [1 - config.valid_fraction - config.test_fraction, 1 - config.test_fraction]
    valid_from, test_from = np.quantile(times, quantiles, method="higher", overwrite_input=True)
    return int(valid_from), int(test_from)


def _count_grouped(grouped: GroupedPartition, config: PrepareConfig, dataset: DatasetWriter) -> None:
    report = dataset.report
    report.data["duplicates_removed"] += grouped.duplicates
    if len(grouped.bot_rows):
        dataset.quarantine(grouped.bot_rows, f"bot: over {config.max_actions_per_hour} actions in one hour")
        report.data["bots"]["users"] += grouped.bot_users
        report.data["bots"]["rows"] += len(grouped.bot_rows)
    report.data["unknown_items"] += grouped.unknown_items


def _item_table(items: pd.DataFrame | None) -> pd.DataFrame | None:
    """Items indexed by id with ``top_category`` and ``attributes`` as a token list."""
    if items is None:
        return None
    items = items.set_index("item_id")
    keep = [c for c in items.columns if items[c].notna().any() and (items[c].astype(str) != "").any()]
    items = items[keep].copy()
    if "category" in items and items["category"].str.contains(CATEGORY_SEPARATOR, regex=False).any():
        items["top_category"] = items["category"].str.split(CATEGORY_SEPARATOR, regex=False).str[0]
    if "attributes" in items:
        items["attributes"] = items["attributes"].map(lambda a: [t for t in a.split(";") if t])
    return items


FEATURE_DOCS = {
    "user_id": ("id", "the user"),
    "item_id": ("id", "the shown item"),
    "category": ("categorical", "full category path"),
    "top_category": ("categorical", "first level of the category path"),
    "brand": ("categorical", "item brand"),
    "price": ("numeric", "item price"),
    "title": ("text", "item title"),
    "description": ("text", "item description"),
    "attributes": ("sequence", "item attribute tokens key=value"),
    "query": ("text", "search query ('' outside search)"),
    "position": ("numeric", "rank at which the item was shown"),
    "hour_of_day": ("categorical", "UTC hour of the impression"),
    "day_of_week": ("categorical", "UTC day of week (0 = Monday)"),
    "category_view_share": (
        "numeric",
        "share of the user's earlier shown items in this item's top category (missing: none yet)",
    ),
    "hist_item_ids": ("sequence", "items the user acted on before this example, most recent last"),
    "hist_categories": ("sequence", "categories of hist_item_ids"),
}


def _draft_schema(present: set[str], users, config) -> sch.Schema:
    """Features and labels of the columns with values (vocab sizes are filled in at the end)."""
    features = []
    for name, (kind, doc) in FEATURE_DOCS.items():
        if name.startswith("hist_") and not config.history_length:
            continue
        if name not in present and not name.startswith("hist_"):
            continue
        if name == "hist_categories" and "category" not in present:
            continue
        dtype = "float32" if kind == "numeric" else "string"
        max_len = config.history_length if name.startswith("hist_") else (16 if kind == "sequence" else 0)
        features.append(
            sch.Feature(
                name=name,
                kind=kind,
                dtype=dtype,
                default=0.0 if kind == "numeric" else "",
                max_len=max_len,
                description=doc,
                roles=list(sch.CANONICAL_ROLES.get(name, [])),
            )
        )
    for column in users.columns if users is not None else []:
        if column == "user_id":
            continue
        numeric = pd.api.types.is_numeric_dtype(users[column])
        features.append(
            sch.Feature(
                name=column,
                kind="numeric" if numeric else "categorical",
                dtype="float32" if numeric else "string",
                default=0.0 if numeric else "",
                description="user profile field",
            )
        )
    features[0].hash_buckets = config.user_hash_buckets
    features[0].description += (
        " (hashed in the model)" if config.user_hash_buckets else " (a vocabulary of the training split's)"
    )
    labels = [sch.Label(name, "int64", 0, f"1 if the impression led to a {name}") for name in FUNNEL_LABELS]
    if "rating" in present:
        labels.append(sch.Label("rating", "float32", -1.0, "explicit rating, -1 where none"))
    if "query_intent" in present:
        labels.append(
            sch.Label("query_intent", "string", "", "shopping intent of the query, '' outside search")
        )
    if "query_relevance" in present:
        labels.append(
            sch.Label(
                "query_relevance",
                "int64",
                -1,
                "1 if the item is what the query asks for, 0 if not, -1 outside search",
            )
        )
    for name in ("truth_p_click", "truth_p_cvr"):
        if name in present:
            labels.append(
                sch.Label(name, "float32", -1.0, "simulator ground-truth probability, -1 if unknown")
            )
    return sch.Schema(features=features, labels=labels)


def _finish_schema(schema, folder, vocab, config, report) -> sch.Schema:
    """Writes vocabularies, then fixes vocab sizes and the default tasks into the schema."""
    vocab.write_schema_vocabularies(schema, folder, config.vocab_min_count, config.vocab_max_size)
    for f in schema.features:
        if f.vocab:
            f.num_oov_buckets = config.num_oov_buckets
    schema.tasks = _default_tasks(schema, folder, vocab, report)
    schema.validate()
    return schema


def _default_tasks(schema, folder, vocab, report) -> list[sch.Task]:
    train = report.data["labels"]["train"]
    n = report.data["examples"]["train"]
    tasks = []
    if 0 < train["click"] < n:
        tasks.append(sch.Task("ctr", "binary", "click"))
    else:
        report.note(
            "ctr task left out: every example is a click (the source logs no impressions)"
            if train["click"] == n
            else "ctr task left out: no clicks in train"
        )
    if train["purchase"] > 0:
        parent = "ctr" if tasks else None
        tasks.append(sch.Task("cvr", "binary", "purchase", parent=parent))
    else:
        report.note("cvr task left out: no purchases in train")
    labels = {label.name for label in schema.labels}
    if "rating" in labels:
        tasks.append(sch.Task("rating", "regression", "rating"))
    if "query_intent" in labels:
        size = vocab.write("query_intent", folder / "vocab/query_intent.txt", 1, 0)
        if size >= 2:
            tasks.append(
                sch.Task(
                    "intent", "multiclass", "query_intent", num_classes=size, vocab="vocab/query_intent.txt"
                )
            )
    return tasks + _text_tasks(schema, labels)  # Schema.load validates each against its type


def _retrieval_task(report: Report) -> list[sch.Task]:
    """Retrieval of the clicked item from the whole catalogue, when train has clicks."""
    if report.data["labels"]["train"]["click"] > 0:
        return [sch.Task("retrieval", "retrieval", "click")]
    report.note("retrieval task left out: no clicks in train")
    return []


def _text_tasks(schema: sch.Schema, labels: set[str]) -> list[sch.Task]:
    """Tasks read from the item and query text alone: category, attributes, query relevance."""
    features = {f.name: f for f in schema.features}
    item_text = [name for name in ("title", "description") if name in features]
    tasks = []
    if not item_text:
        return tasks
    for name, kind, task_type in (
        ("category", "categorical", "multiclass"),
        ("attributes", "sequence", "multilabel"),
    ):
        f = features.get(name)
        if f is not None and f.kind == kind and f.vocab_size >= 2:
            tasks.append(
                sch.Task(
                    f"item_{name}", task_type, name, num_classes=f.vocab_size, vocab=f.vocab, inputs=item_text
                )
            )
    if "query_relevance" in labels and "query" in features and "title" in features:
        tasks.append(sch.Task("relevance", "binary", "query_relevance", inputs=["query", "title"]))
    return tasks
